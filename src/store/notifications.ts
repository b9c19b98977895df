import type { StateCreator } from 'zustand/vanilla';
import type { ErrorInfo } from '../worker/protocol.ts';
import type { Notice, NotificationsSlice, StudioState } from './types.ts';

let nextNotice = 1;

export const createNotificationsSlice: StateCreator<StudioState, [], [], NotificationsSlice> = (set) => ({
  notifications: [],
  notify: (notice) => {
    const id = `notice-${nextNotice++}`;
    set((s) => ({ notifications: [...s.notifications, { ...notice, id }] }));
    return id;
  },
  dismiss: (id) => set((s) => ({ notifications: s.notifications.filter((n) => n.id !== id) })),
});

/** A user-facing notice for a failed operation; the message already names the file/tensor. */
export function errorNotice(title: string, error: ErrorInfo): Omit<Notice, 'id'> {
  return { level: 'error', title, message: error.message, file: error.file, tensor: error.tensor };
}
