/** The Date header's value, made once a second (node:http caches it the same way). */
let dateSecond = -1;
let dateText = '';

export function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}
