// Dates and times as people read them.

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
const weekdayFormat = new Intl.DateTimeFormat(undefined, { weekday: 'long' });
const shortWeekday = new Intl.DateTimeFormat(undefined, { weekday: 'short' });
const shortDate = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const longDate = new Intl.DateTimeFormat(undefined, { weekday: 'long', month: 'long', day: 'numeric' });
const longDateYear = new Intl.DateTimeFormat(undefined, { weekday: 'long', month: 'long', day: 'numeric', year: 'numeric' });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'short' });

function startOfDay(date) {
  const d = new Date(date);
  d.setHours(0, 0, 0, 0);
  return d;
}

function daysAgo(date, now = new Date()) {
  return Math.round((startOfDay(now) - startOfDay(date)) / 86_400_000);
}

/** "14:05" today, "Yesterday", "Mon" this week, else "Nov 3". */
export function listTime(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  const ago = daysAgo(date);
  if (ago <= 0) return timeFormat.format(date);
  if (ago === 1) return 'Yesterday';
  if (ago < 7) return shortWeekday.format(date);
  return shortDate.format(date);
}

export function clockTime(iso) {
  return iso ? timeFormat.format(new Date(iso)) : '';
}

export function fullTime(iso) {
  return iso ? fullFormat.format(new Date(iso)) : '';
}

/** The key that groups messages by local calendar day. */
export function dayKey(iso) {
  const d = new Date(iso);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

/** "Today", "Yesterday", "Monday", "Wednesday, November 25". */
export function dayLabel(iso) {
  const date = new Date(iso);
  const ago = daysAgo(date);
  if (ago <= 0) return 'Today';
  if (ago === 1) return 'Yesterday';
  if (ago < 7) return weekdayFormat.format(date);
  if (date.getFullYear() === new Date().getFullYear()) return longDate.format(date);
  return longDateYear.format(date);
}

/** "Bob", "Bob and Carol", "Bob, Carol and 2 others". */
export function joinNames(names, limit = 3) {
  if (names.length === 0) return '';
  if (names.length === 1) return names[0];
  if (names.length <= limit) return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
  const rest = names.length - (limit - 1);
  return `${names.slice(0, limit - 1).join(', ')} and ${rest} others`;
}

export function firstName(name) {
  return String(name || '').trim().split(/\s+/)[0] || name;
}

/**
 * A phone number for people when the server gave no `display`: North
 * American numbers as "(415) 555-2671", others in E.164 as they are.
 */
export function phoneDisplay(e164) {
  const text = String(e164 || '');
  const nanp = text.match(/^\+1(\d{3})(\d{3})(\d{4})$/);
  return nanp ? `(${nanp[1]}) ${nanp[2]}-${nanp[3]}` : text;
}

/** "1 segment", "3 segments". */
export function plural(count, one, many = `${one}s`) {
  return `${count} ${count === 1 ? one : many}`;
}

/** A message in a line: its text, or what it carries when it has none. */
export function messageSummary(message) {
  const text = (message.text || '').trim();
  if (text) return text;
  const count = message.attachments?.length || 0;
  if (count === 1) return 'Photo';
  if (count > 1) return `${count} photos`;
  return '';
}
