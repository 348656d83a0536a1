// The `filter` parameter of the vCloud API query service (GET /api/query?type=…&filter=…), written
// so that vCloud Director, which decodes the query string once, reads back exactly the values asked
// for. Facts this follows (read, not copied):
//
// - VMware Cloud Director API Programming Guide 10.6, "Query Parameters": the filter is pct-encoded
//   (RFC 3986), and `( ) , ; \` inside a value are escaped with a backslash (its example:
//   `name==VM\,%201` searches for "VM, 1"). "Query Filter Expressions": `;` is AND, `,` is OR,
//   parentheses group; `*` in a value is a wildcard.
// - pyvcloud, pyvcloud/vcd/client.py, `_AbstractQuery.__init__`, `_escape_special_characters` and
//   `_build_query_uri`: from API 35.0 each equality value is percent-encoded once with
//   `urllib.parse.quote` (unreserved characters and `/` stay as they are), the encoded `( ) , ;`
//   get a backslash in front (`%28` → `%5C%28`), and the filter is appended to the URL as it is,
//   without `filterEncoded`, because "from 35.0 vCD does not accept double-encoded filter values,
//   and filterEncoded has no effect". Below 35.0 it sends `filterEncoded=true` and encodes the whole
//   filter once more over values the caller has already encoded: vCD then decodes the query,
//   splits the FIQL, and decodes each value again.
// - go-vcloud-director, govcd/api.go `newRequest` (notEncodedParams go on the URL as they are) and
//   its callers (govcd/orgvdcnetwork.go `FindEdgeGatewayNameByNetwork`, govcd/adminorg.go
//   `FindAdminCatalogRecords`, govcd/system.go): each value once through `url.QueryEscape`, and
//   `filterEncoded=true` at every version. It escapes no separator; govcd/openapi.go
//   `shouldDoSlowSearch` lists everything instead when a value has `,` `;` `*` or a space, since
//   vCD answers "Cannot parse the supplied filter" to those.
//
// Where the two differ this follows pyvcloud, which states the version rule; the backslash in a
// value is escaped too, as the Programming Guide asks and pyvcloud does not.

/** The first API version whose query service takes single-encoded, backslash-escaped values. */
export const SINGLE_ENCODED_FILTER_VERSION = '35.0';

/**
 * RFC 3986 percent-encoding of UTF-8 that leaves the unreserved characters and `/` as they are,
 * like Python's `urllib.parse.quote`, which pyvcloud uses.
 */
export function percentEncode(text: string): string {
  return encodeURIComponent(text)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%2F/g, '/');
}

/** A value as vCD's filter parser must read it: `( ) , ; \` each behind a backslash. */
export function escapeFilterValue(value: string): string {
  return value.replace(/[(),;\\]/g, (c) => `\\${c}`);
}

/**
 * The encoded query-string parameters (to be appended after `&`) that ask for records whose
 * attributes equal these values, all conditions ANDed; '' when there is none.
 */
export function equalityFilterParams(
  conditions: Readonly<Record<string, string>>,
  apiVersion: string,
): string {
  const entries = Object.entries(conditions);
  if (entries.length === 0) return '';
  if (Number.parseFloat(apiVersion) >= Number.parseFloat(SINGLE_ENCODED_FILTER_VERSION)) {
    const filter = entries.map(([k, v]) => `${percentEncode(k)}==${percentEncode(escapeFilterValue(v))}`);
    return `filter=${filter.join(';')}`;
  }
  // Before 35.0: values encoded, then the whole expression encoded again, with filterEncoded=true.
  const filter = entries.map(([k, v]) => `${percentEncode(k)}==${percentEncode(v)}`).join(';');
  return `filterEncoded=true&filter=${percentEncode(filter)}`;
}
