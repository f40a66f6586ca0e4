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
