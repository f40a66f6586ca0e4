// Hash routes: #/messages, #/messages/7, #/settings, #/admin.

export function parseRoute(hash = location.hash) {
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean);
  const [name = 'messages', id] = parts;
  switch (name) {
    case 'messages': {
      const number = Number(id);
      return { name, id: Number.isInteger(number) && number > 0 ? number : null };
    }
    case 'settings':
    case 'admin':
    case 'phonebook':
      return { name, id: null };
    default:
      return { name: 'messages', id: null };
  }
}

export function href(name, id = null) {
  return id ? `#/${name}/${id}` : `#/${name}`;
}

export function go(name, id = null) {
  const target = href(name, id);
  if (location.hash !== target) location.hash = target;
}

export function onRouteChange(handler) {
  window.addEventListener('hashchange', () => handler(parseRoute()));
}
