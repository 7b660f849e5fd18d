// What each side of the demo costs on the wire, in bytes.

const encoder = new TextEncoder();
// Browsers do not expose request header sizes; a typical fetch sends about this much.
const REQUEST_HEADERS_ESTIMATE = 300;

/** A WebSocket text frame: UTF-8 payload plus frame header (estimated from the payload size). */
export function frameBytes(direction, text) {
  const payload = encoder.encode(text).length;
  const header = payload < 126 ? 2 : payload < 65536 ? 4 : 10;
  // Frames from the browser also carry a 4-byte masking key.
  return payload + header + (direction === "out" ? 4 : 0);
}

/**
 * A frame from the server when permessage-deflate is agreed: the payload deflated here as the
 * server deflates it (raw deflate, each message alone: `ws.compression = "shared"`, the
 * default), plus the frame header. Payloads under 128 bytes go uncompressed, as the server
 * sends them. An estimate: browsers do not tell how many bytes a message took on the wire.
 */
export async function deflatedFrameBytes(text) {
  const payload = encoder.encode(text);
  if (payload.length < 128) return frameBytes("in", text);
  const deflated = new Blob([payload]).stream().pipeThrough(new CompressionStream("deflate-raw"));
  const size = (await new Response(deflated).arrayBuffer()).byteLength;
  return size + (size < 126 ? 2 : size < 65536 ? 4 : 10);
}

/**
 * Bytes of the requests to `pathname` completed since the last call: the Resource Timing
 * transferSize (response headers and body) plus estimated request headers. Clears the page's
 * resource timing buffer so it never fills up and stops recording.
 */
export function drainTransferredBytes(pathname) {
  const entries = performance
    .getEntriesByType("resource")
    .filter((entry) => new URL(entry.name).pathname === pathname);
  performance.clearResourceTimings();
  return entries.reduce((sum, entry) => sum + entry.transferSize + REQUEST_HEADERS_ESTIMATE, 0);
}
