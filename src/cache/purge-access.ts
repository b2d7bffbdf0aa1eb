/** Who may send PURGE to a cached route, by default: loopback only (purge_allow; src/http/peer-list.ts). */
export const DEFAULT_PURGE_ALLOW = ['127.0.0.1', '::1'];
