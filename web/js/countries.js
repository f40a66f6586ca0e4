// Country names for ISO 3166 codes, in the browser's language.

let names = null;
try {
  names = new Intl.DisplayNames(undefined, { type: 'region' });
} catch {
  names = null;
}

/** "United States" for "US"; the code itself when the browser has no name. */
export function countryName(code) {
  try {
    return names?.of(code) || code;
  } catch {
    return code;
  }
}

/** The codes sorted by their names. */
export function byName(codes) {
  return [...codes].sort((a, b) => countryName(a).localeCompare(countryName(b)));
}
