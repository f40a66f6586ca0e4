// Alert tones that ship with the portal (web/sounds/*.wav).

export const TONES = ['chime', 'marimba', 'pop', 'bell'];

const cache = new Map();
let lastPlayed = 0;

function audioFor(tone) {
  const name = TONES.includes(tone) ? tone : 'chime';
  let audio = cache.get(name);
  if (!audio) {
    audio = new Audio(`/sounds/${name}.wav`);
    audio.preload = 'auto';
    cache.set(name, audio);
  }
  return audio;
}

/** Plays a tone; never throws (browsers may refuse sound before a click). */
export function playTone(tone, { force = false } = {}) {
  const now = Date.now();
  // A burst of messages (e.g. after reconnecting) rings once.
  if (!force && now - lastPlayed < 1500) return Promise.resolve(false);
  lastPlayed = now;
  try {
    const audio = audioFor(tone);
    audio.currentTime = 0;
    const played = audio.play();
    if (played && typeof played.then === 'function') {
      return played.then(() => true, () => false);
    }
    return Promise.resolve(true);
  } catch {
    return Promise.resolve(false);
  }
}

export function toneLabel(tone) {
  return tone.charAt(0).toUpperCase() + tone.slice(1);
}
