// The top bar: brand, section tabs (Messages with its red dot, Settings,
// Admin for administrators), and the signed-in user with Sign out.

import { h, avatar } from '../dom.js';
import { icon, logo } from '../icons.js';
import { href } from '../router.js';

// Later sections (Phonebook) slot in here.
const TABS = [
  { name: 'messages', label: 'Messages', icon: 'message' },
  { name: 'settings', label: 'Settings', icon: 'settings' },
  { name: 'admin', label: 'Admin', icon: 'shield', adminOnly: true },
];

export function createNav(app) {
  const { store } = app;
  const links = new Map();
  const dot = h('span', { class: 'red-dot', hidden: true, 'data-testid': 'messages-dot' });
  const dotLabel = h('span', { class: 'visually-hidden' });

  const tabs = h('ul', { class: 'nav-tabs' });
  for (const tab of TABS) {
    if (tab.adminOnly && !store.isAdmin) continue;
    const link = h(
      'a',
      { class: 'nav-tab', href: href(tab.name), dataset: { tab: tab.name } },
      icon(tab.icon, { size: 18 }),
      h('span', { class: 'nav-label' }, tab.label),
      tab.name === 'messages' ? [dot, dotLabel] : null,
    );
    links.set(tab.name, link);
    tabs.append(h('li', null, link));
  }

  const me = store.me.extension;
  const signOut = h('button', { class: 'button ghost sign-out', type: 'button' }, icon('signOut', { size: 16 }), h('span', { class: 'nav-label' }, 'Sign out'));
  signOut.addEventListener('click', () => app.signOut());

  // In demo mode the server runs a phone simulator to text the business from.
  const simulator = store.me.simulator_url
    ? h('a', { class: 'button ghost simulator-link', href: store.me.simulator_url, target: '_blank', rel: 'noopener', title: 'Act as a customer’s phone (opens in a new tab)' }, icon('mobile', { size: 16 }), h('span', { class: 'nav-label' }, 'Phone simulator'), h('span', { class: 'visually-hidden' }, ' (opens in a new tab)'))
    : null;

  const el = h(
    'header',
    { class: 'topbar' },
    h('div', { class: 'brand' }, logo(28), h('span', { class: 'brand-name' }, 'Switchboard'), h('span', { class: 'brand-org' }, store.me.organization.name || store.me.organization.slug)),
    h('nav', { class: 'nav', 'aria-label': 'Sections' }, tabs),
    simulator,
    h(
      'div',
      { class: 'whoami' },
      avatar(me.name, me.id, 'avatar-small'),
      h('span', { class: 'whoami-text' }, h('span', { class: 'whoami-name' }, me.name), h('span', { class: 'whoami-ext' }, `Ext. ${me.number}`)),
      signOut,
    ),
  );

  function updateRoute(route) {
    for (const [name, link] of links) {
      if (name === route.name) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
  }

  function updateUnread() {
    const total = store.totalUnread();
    dot.hidden = total === 0;
    dotLabel.textContent = total ? ` (${total} unread)` : '';
    document.title = total ? `(${total}) Switchboard` : 'Switchboard';
  }

  const offs = [store.on('route', updateRoute), store.on('unread', updateUnread)];
  updateRoute(store.route);
  updateUnread();
  return { el, destroy: () => offs.forEach((off) => off()) };
}
