// What the supervisor and the serving process say to each other over the IPC channel, apart from the
// serving process's code: the supervisor holds the connection and supervises, and must not load the
// readers' stack (FUSE server, files, views) it never runs.

import type { InitInfo } from '../fuse/session.js';
import type { MetricFamily } from '../metrics/families.js';
import type { DaemonConfig } from './config.js';

/** The serving process's /dev/fuse connection. */
export const FUSE_FD = 3;

export type SupervisorMessage =
  | {
      type: 'start';
      config: DaemonConfig;
      virtualize: boolean;
      /** Taking over a connection a predecessor initialized. */
      initialized?: InitInfo;
      /** Wait for 'go' before reading (a graceful handoff: the predecessor is still reading). */
      waitForGo: boolean;
      /** Ask the kernel to replay requests a crashed predecessor had taken. */
      resend: boolean;
    }
  /** `handedOver`: the predecessor left its file handles in the handoff state file. */
  | { type: 'go'; handedOver: boolean; resend: boolean }
  | { type: 'stop'; handoff: boolean }
  | { type: 'virtualize'; on: boolean }
  | { type: 'metrics' };

export type ServerMessage =
  | { type: 'ready' }
  | { type: 'serving'; init: InitInfo; resent: boolean }
  | { type: 'stopped'; clean: boolean; handedOver: boolean }
  | { type: 'ended'; reason: string; detail?: string }
  | { type: 'metrics'; families: MetricFamily[] };
