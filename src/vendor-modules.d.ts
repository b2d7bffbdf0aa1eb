/**
 * Types for send's own helpers, which the static handler uses directly so a
 * file gets the same Content-Type, ETag and 304 logic from memory as from send.
 */
declare module 'etag' {
  import type { Stats } from 'node:fs';
  function etag(entity: string | Buffer | Stats, options?: { weak?: boolean }): string;
  export default etag;
}

declare module 'fresh' {
  function fresh(
    requestHeaders: Record<string, string | string[] | undefined>,
    responseHeaders: { etag?: string; 'last-modified'?: string },
  ): boolean;
  export default fresh;
}

declare module 'mime-types' {
  const mime: { contentType(extensionOrType: string): string | false };
  export default mime;
}
