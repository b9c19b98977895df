import type { AdapterSummary, CheckpointSummary } from '../engine/index.ts';
import type { EngineApi } from '../worker/client.ts';
import type { ErrorInfo, FileEntry, Progress } from '../worker/protocol.ts';

/**
 * The studio's state: one zustand store built from typed slices (STYLE habit 12). Slices keep
 * flat, prefixed fields so each has its own selector (selectors.ts). Errors are kept as
 * ErrorInfo (plain data) so the state stays serialisable.
 */

export type GpuStatus = 'idle' | 'connecting' | 'ready' | 'unavailable' | 'lost' | 'crashed';

export interface GpuSlice {
  gpuStatus: GpuStatus;
  adapter: AdapterSummary | null;
  gpuError: ErrorInfo | null;
  /** Starts (or, after a crash/device loss, restarts) the engine's GPU device. */
  connectGpu: () => Promise<void>;
}

export type CheckpointRole = 'base' | 'finetune';
export type CheckpointStatus = 'inspecting' | 'ready' | 'failed';

export interface CheckpointEntry {
  id: string;
  /** Folder name, or the name given to loose files. */
  name: string;
  role: CheckpointRole;
  status: CheckpointStatus;
  summary: CheckpointSummary | null;
  error: ErrorInfo | null;
  progress: Progress | null;
  /** The files as chosen, kept for later stages (merge, evaluation) that read tensors. */
  files: FileEntry[];
}

export interface WorkspaceSlice {
  checkpoints: CheckpointEntry[];
  /** Inspects the files in the engine and adds a card; resolves to the entry's id. Never throws. */
  addCheckpoint: (name: string, files: FileEntry[]) => Promise<string>;
  cancelCheckpoint: (id: string) => void;
  removeCheckpoint: (id: string) => void;
  /** At most one base: making one the base turns the previous base into a fine-tune. */
  setRole: (id: string, role: CheckpointRole) => void;
}

export type NoticeLevel = 'error' | 'warning' | 'info';

export interface Notice {
  id: string;
  level: NoticeLevel;
  title: string;
  message: string;
  file?: string;
  tensor?: string;
}

export interface NotificationsSlice {
  notifications: Notice[];
  notify: (notice: Omit<Notice, 'id'>) => string;
  dismiss: (id: string) => void;
}

export type StudioState = GpuSlice & WorkspaceSlice & NotificationsSlice;

/** What slices get besides zustand's set/get: the engine (never the other way round). */
export interface StoreDeps {
  engine: EngineApi;
}
