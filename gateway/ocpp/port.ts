import type { CentralCommandMsg, CpChannel, CpOutMsg } from '../../protocol/index.js';

/**
 * The one seam between the gateway's bridge and a CP front-end other than MQTT (OCPP): the
 * front-end authenticates the CP and hands in its messages as if they had come over MQTT
 * on `cp/<cpId>/<channel>` from that identity (same validation, spoof check, order and
 * buffering), and takes central's commands for the CPs connected to it.
 */
export interface CpPort {
  /** Validates and bridges one message of `cpId`; resolves true once the bus has it, false when it was refused. */
  fromCp(cpId: string, channel: CpChannel, msg: CpOutMsg): Promise<boolean>;
  /** While subscribed, central's commands for `cpId` go to `sink` instead of MQTT; returns the unsubscribe. */
  commandsFor(cpId: string, sink: (cmd: CentralCommandMsg) => void): () => void;
}
