import type { StateCreator } from 'zustand/vanilla';
import { errorRecord } from './errors.ts';
import type { NotificationsSlice, StudioState } from './types.ts';

let nextNotice = 1;

export const createNotificationsSlice: StateCreator<StudioState, [], [], NotificationsSlice> = (set, get) => ({
  notifications: [],
  notify: (notice) => {
    const id = `notice-${nextNotice++}`;
    set((s) => ({ notifications: [...s.notifications, { ...notice, id }] }));
    return id;
  },
  dismiss: (id) => set((s) => ({ notifications: s.notifications.filter((n) => n.id !== id) })),
  reportError: (title, error) => {
    const info = errorRecord(error);
    // The message already names the file and tensor; they are kept apart too for the notice's details.
    get().notify({ level: 'error', title, message: info.message, file: info.file, tensor: info.tensor });
    return info;
  },
});
