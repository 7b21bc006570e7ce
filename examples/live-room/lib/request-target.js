'use strict';

/** A path of RFC 3986 characters and well-formed percent escapes. */
const PATH_PATTERN = /^\/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*$/;
/** A query of printable ASCII whose percent signs all start an escape. */
const QUERY_PATTERN = /^(?:[\x21-\x24\x26-\x7E]|%[0-9A-Fa-f]{2})*$/;
/** The scheme and authority of an absolute-form request target. */
const ABSOLUTE_PREFIX = /^https?:\/\/[^/?#]*/i;

function decodes(text) {
  try {
    decodeURIComponent(text.replace(/\+/g, ' '));
    return true;
  } catch {
    return false;
  }
}

/**
 * Parses the request target of an HTTP request line (`req.url`): origin-form
 * (`/path?query`) or absolute-form (`http://host/path?query`). Never throws.
 * @param {unknown} target
 * @returns {{path: string, params: URLSearchParams} | null} null when it is not a valid target
 *   (bad characters, a malformed percent escape, percent-encoded bytes that are not UTF-8)
 */
function parseRequestTarget(target) {
  if (typeof target !== 'string') return null;
  const prefix = ABSOLUTE_PREFIX.exec(target);
  let rest = prefix ? target.slice(prefix[0].length) : target;
  if (prefix && !rest.startsWith('/')) rest = `/${rest}`;
  const mark = rest.indexOf('?');
  const path = mark < 0 ? rest : rest.slice(0, mark);
  const query = mark < 0 ? '' : rest.slice(mark + 1);
  if (!PATH_PATTERN.test(path) || !QUERY_PATTERN.test(query)) return null;
  if (!decodes(path) || !decodes(query)) return null;
  return { path, params: new URLSearchParams(query) };
}

module.exports = { parseRequestTarget };
