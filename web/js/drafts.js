// Unsent text per conversation, kept in localStorage so that a reload or an
// expired session never loses what the user was typing.

let owner = 'anonymous';

/** Drafts belong to one extension of one organization. */
export function setDraftOwner(organizationSlug, extensionNumber) {
  owner = `${organizationSlug}/${extensionNumber}`;
}

function key(conversationId) {
  return `switchboard.draft.${owner}.${conversationId}`;
}

export function loadDraft(conversationId) {
  try {
    return localStorage.getItem(key(conversationId)) || '';
  } catch {
    return '';
  }
}

export function saveDraft(conversationId, text) {
  try {
    if (text) localStorage.setItem(key(conversationId), text);
    else localStorage.removeItem(key(conversationId));
  } catch {
    // Storage full or disabled: the draft lives only in the text box.
  }
}

/** Small preferences that stay on this device. */
export const prefs = {
  get(name, fallback = null) {
    try {
      const value = localStorage.getItem(`switchboard.pref.${name}`);
      return value === null ? fallback : JSON.parse(value);
    } catch {
      return fallback;
    }
  },
  set(name, value) {
    try {
      localStorage.setItem(`switchboard.pref.${name}`, JSON.stringify(value));
    } catch {
      // Not fatal: the preference lasts for this page only.
    }
  },
};

/**
 * Messages sent but not yet confirmed by the server, so that a reload or an
 * expired session never loses them: they are sent again (same idempotency
 * key, so never twice) when the user is back.
 */
export const outbox = {
  key: () => `switchboard.outbox.${owner}`,
  all() {
    try {
      return JSON.parse(localStorage.getItem(this.key()) || '[]');
    } catch {
      return [];
    }
  },
  put(item) {
    const items = this.all().filter((x) => x.idempotency_key !== item.idempotency_key);
    items.push(item);
    saveOutbox(this.key(), items);
  },
  remove(idempotencyKey) {
    saveOutbox(this.key(), this.all().filter((x) => x.idempotency_key !== idempotencyKey));
  },
};

function saveOutbox(key, items) {
  try {
    if (items.length) localStorage.setItem(key, JSON.stringify(items));
    else localStorage.removeItem(key);
  } catch {
    // Storage full or disabled: unsent messages stay on screen only.
  }
}
