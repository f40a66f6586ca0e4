// Entry point: decides between the sign-in page and the signed-in shell,
// and swaps views as the hash route changes.

import { h } from './dom.js';
import { App } from './app.js';
import { parseRoute, onRouteChange, go } from './router.js';
import { createSignIn } from './components/signin.js';
import { createNav } from './components/nav.js';
import { createBanner } from './components/banner.js';
import { createToasts } from './components/toast.js';
import { createMessagesView } from './components/messages-view.js';
import { createSettings } from './components/settings.js';
import { createAdmin } from './components/admin.js';

const root = document.getElementById('app');
const app = new App();
const toasts = createToasts();
let screen = null; // the mounted top-level view: {el, destroy}

function mount(view) {
  screen?.destroy();
  screen = view;
  root.replaceChildren(view.el, toasts.el);
  root.removeAttribute('aria-busy');
}

function createShell() {
  const nav = createNav(app);
  const banner = createBanner(app);
  const main = h('div', { class: 'shell-main' });
  const el = h('div', { class: 'shell' }, h('a', { class: 'skip-link', href: '#main-content' }, 'Skip to content'), nav.el, banner.el, main);
  main.id = 'main-content';
  let view = null;
  let viewName = null;

  function show(route) {
    if (route.name === 'admin' && !app.store.isAdmin) {
      go('messages');
      return;
    }
    app.store.setRoute(route);
    if (viewName === route.name) return;
    view?.destroy();
    viewName = route.name;
    if (route.name === 'settings') view = createSettings(app);
    else if (route.name === 'admin') view = createAdmin(app);
    else view = createMessagesView(app);
    main.replaceChildren(view.el);
  }

  return {
    el,
    show,
    destroy() {
      view?.destroy();
      nav.destroy();
      banner.destroy();
    },
  };
}

app.on('toast', (toast) => toasts.show(toast));

app.on('signed-in', () => {
  const shell = createShell();
  mount(shell);
  shell.show(parseRoute());
});

app.on('signed-out', ({ expired, previous }) => {
  mount(createSignIn(app, { expired, previous }));
  document.title = 'Sign in · Switchboard';
});

onRouteChange((route) => {
  if (screen && typeof screen.show === 'function') screen.show(route);
});

app.resume().catch(() => {
  mount({
    el: h('main', { class: 'signin' }, h('div', { class: 'signin-card' }, h('h1', null, 'Switchboard is unreachable'), h('p', null, 'The server did not answer. Check your connection and reload the page.'))),
    destroy() {},
  });
});
