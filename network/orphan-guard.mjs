// Preloaded (node --import) into every process `evcharging up` supervises. Each child runs in
// its own process group, so a terminal's Ctrl-C reaches only the supervisor, which stops the
// children in order. If the supervisor itself dies without stopping them (SIGKILL, OOM), the
// child is re-parented: it notices within half a second and shuts down gracefully (SIGTERM to
// itself, which lib/lifecycle handles), so no process is left orphaned.
const parent = Number(process.env.EVCHARGING_SUPERVISOR_PID);
if (parent > 0) {
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    process.kill(process.pid, 'SIGTERM');
    setTimeout(() => process.exit(1), 10_000).unref();
  }, 500);
  timer.unref();
}
