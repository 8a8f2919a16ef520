/**
 * The chaos harness's fault schedule, as data: a seeded PRNG turns (seed, duration, the
 * network's components, what may be faulted) into a list of faults at fixed moments. Pure, so
 * the same seed replays the same schedule and it is unit-tested.
 */

/** mulberry32: small, fast, good enough for schedules; the same seed gives the same sequence. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type TargetKind = 'engine' | 'monitor' | 'gateway' | 'central' | 'driver';
export interface Target { name: string; kind: TargetKind }

export type FaultKind = 'kill' | 'pause-kafka' | 'cut-link';
export interface Fault {
  /** ms after the start of the faulting phase. */
  at: number;
  kind: FaultKind;
  /** A component (kill), `kafka` (pause-kafka) or a link name (cut-link). */
  target: string;
  /** How long the target stays down (killed → restarted, paused → resumed, cut → restored). */
  downMs: number;
}

export interface ScheduleOptions {
  seed: number;
  durationMs: number;
  targets: readonly Target[];
  kafka: boolean;
  /** Links that can be cut (host namespaces); empty on loopback. */
  links: readonly string[];
  /** Mean time between fault starts. */
  meanGapMs: number;
  /** Down times are drawn between these. */
  minDownMs?: number;
  maxDownMs?: number;
}

/** How often each kind of fault is drawn, relative to the others. */
const WEIGHTS: Record<TargetKind | 'kafka' | 'link', number> = { engine: 3, monitor: 2, driver: 3, gateway: 1, central: 1.5, kafka: 1.5, link: 2 };

export function makeSchedule(o: ScheduleOptions): Fault[] {
  const r = rng(o.seed);
  const minDown = o.minDownMs ?? 500;
  const maxDown = o.maxDownMs ?? 6_000;
  /** Until when each target is down: a target is not faulted again while it is. */
  const downUntil = new Map<string, number>();
  const faults: Fault[] = [];
  let t = Math.round(o.meanGapMs * (0.5 + r()));
  while (t < o.durationMs) {
    const up = (name: string) => (downUntil.get(name) ?? -1) < t;
    const choices: Array<{ w: number; kind: FaultKind; target: string }> = [];
    const byKind = new Map<TargetKind, Target[]>();
    for (const x of o.targets) if (up(x.name)) byKind.set(x.kind, [...(byKind.get(x.kind) ?? []), x]);
    for (const [kind, list] of byKind) {
      for (const x of list) choices.push({ w: WEIGHTS[kind] / list.length, kind: 'kill', target: x.name });
    }
    if (o.kafka && up('kafka')) choices.push({ w: WEIGHTS.kafka, kind: 'pause-kafka', target: 'kafka' });
    const links = o.links.filter(up);
    for (const l of links) choices.push({ w: WEIGHTS.link / links.length, kind: 'cut-link', target: l });
    if (choices.length) {
      let x = r() * choices.reduce((s, c) => s + c.w, 0);
      const pick = choices.find((c) => (x -= c.w) < 0) ?? choices[choices.length - 1]!;
      const downMs = Math.round(minDown + r() * (maxDown - minDown));
      faults.push({ at: t, kind: pick.kind, target: pick.target, downMs });
      downUntil.set(pick.target, t + downMs);
    }
    // Exponential gaps around the mean, never shorter than 100 ms.
    t += Math.max(100, Math.round(-Math.log(1 - r()) * o.meanGapMs));
  }
  return faults;
}

/** When the last fault is over (its target back), ms after the start of the faulting phase. */
export const lastRecovery = (faults: readonly Fault[]) => faults.reduce((m, f) => Math.max(m, f.at + f.downMs), 0);
