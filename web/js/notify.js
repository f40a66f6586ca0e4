// Browser notifications for new messages while the portal is in the background.

import { prefs } from './drafts.js';

export function notificationsSupported() {
  return typeof Notification !== 'undefined';
}

export function notificationsEnabled() {
  return notificationsSupported() && prefs.get('notifications', false) && Notification.permission === 'granted';
}

/** Asks the browser for permission (only when the user turns it on). */
export async function enableNotifications() {
  if (!notificationsSupported()) return 'unsupported';
  let permission = Notification.permission;
  if (permission === 'default') permission = await Notification.requestPermission();
  prefs.set('notifications', permission === 'granted');
  return permission;
}

export function disableNotifications() {
  prefs.set('notifications', false);
}

/** Shows a notification when enabled and the page is not being looked at. */
export function notify(title, body, { tag, onClick } = {}) {
  if (!notificationsEnabled() || document.visibilityState === 'visible') return;
  try {
    const notification = new Notification(title, { body, tag, icon: '/icons/favicon.svg' });
    notification.onclick = () => {
      window.focus();
      onClick?.();
      notification.close();
    };
  } catch {
    // Some browsers only allow notifications from a service worker.
  }
}
