/**
 * Pure: decides from metered power whether the vehicle has stopped drawing because its battery
 * is full. Serial hardware has no state of charge; the sign is power falling to (almost) nothing
 * with the relay closed, after the vehicle drew power in this session, for a while. A vehicle that
 * never draws at all is also done, after `noDrawMs`.
 */
export interface FullDetectorOptions { belowKw: number; afterMs: number; noDrawMs: number }

export interface FullDetector {
  reset(): void;
  /** A new meter sample; returns whether the vehicle is full now. */
  sample(nowMs: number, relayClosed: boolean, powerKw: number): boolean;
  readonly full: boolean;
}

export function createFullDetector(o: FullDetectorOptions): FullDetector {
  let drew = false;
  let lowSince: number | undefined;
  let closedSince: number | undefined;
  let full = false;
  return {
    reset() { drew = false; lowSince = undefined; closedSince = undefined; full = false; },
    sample(now, relayClosed, kw) {
      if (!relayClosed) { lowSince = undefined; closedSince = undefined; return full; }
      closedSince ??= now;
      if (kw > o.belowKw) { drew = true; lowSince = undefined; return full; }
      lowSince ??= now;
      if (drew && now - lowSince >= o.afterMs) full = true;
      if (!drew && now - closedSince >= o.noDrawMs) full = true;
      return full;
    },
    get full() { return full; },
  };
}
