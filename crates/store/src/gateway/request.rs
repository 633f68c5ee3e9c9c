//! Content negotiation for trustless gateway requests.
//!
//! The response type comes from the `format` query parameter when present (the spec: it "SHOULD
//! take precedence"), else from the `Accept` header, choosing the supported media range with the
//! highest `q` (RFC 9110 §12.5.1). CAR parameters come from the `Accept` entry for CAR and are
//! overridden by the `car-version`, `car-order` and `car-dups` query parameters.

use std::fmt;

use super::{MEDIA_TYPE_CAR, MEDIA_TYPE_RAW};

/// Longest `Accept` header considered; real ones are well under 200 bytes.
pub const MAX_ACCEPT_LEN: usize = 4096;

/// Most query parameters a request may carry.
const MAX_QUERY_PARAMS: usize = 32;

/// Which blocks under the terminus of the path a CAR response holds (spec: `dag-scope`, and
/// `entity-bytes`, which implies the entity scope).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DagScope {
    /// Only the terminus block.
    Block,
    /// The blocks needed to read the whole terminus entity: all of a `UnixFS` file; the node
    /// alone for a directory or any non-`UnixFS` block.
    Entity,
    /// Of a `UnixFS` file, only the blocks needed to verify bytes `from..=to` (spec:
    /// `entity-bytes=from:to`; negative offsets count from the end, `to = None` is `*`, the end).
    /// For anything that is not a file it is [`Self::Entity`].
    EntityBytes {
        /// First byte (negative: from the end).
        from: i64,
        /// Last byte, inclusive (negative: from the end; `None`: the last byte).
        to: Option<i64>,
    },
    /// The whole DAG under the terminus (the spec's default).
    #[default]
    All,
}

impl DagScope {
    /// The scope as it appears in an `ETag`: distinct for every distinct response.
    #[must_use]
    pub fn etag_part(self) -> String {
        match self {
            Self::Block => "block".to_owned(),
            Self::Entity => "entity".to_owned(),
            Self::All => "all".to_owned(),
            Self::EntityBytes { from, to } => match to {
                Some(to) => format!("entity-bytes-{from}-{to}"),
                None => format!("entity-bytes-{from}-end"),
            },
        }
    }
}

/// Parses `from:to` (spec: integers, negative from the end, `to` may be `*`).
fn parse_entity_bytes(value: &str) -> Result<DagScope, Rejection> {
    let bad = || {
        Rejection::BadRequest(format!(
            "entity-bytes `{value}` is not `from:to` (integers, negative from the end, to may be *)"
        ))
    };
    let (from, to) = value.split_once(':').ok_or_else(bad)?;
    let from = from.parse::<i64>().map_err(|_| bad())?;
    let to = match to {
        "*" => None,
        to => Some(to.parse::<i64>().map_err(|_| bad())?),
    };
    Ok(DagScope::EntityBytes { from, to })
}

/// What the response will be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFormat {
    /// One raw block (`application/vnd.ipld.raw`).
    Raw,
    /// A `CARv1` stream in depth-first order (`application/vnd.ipld.car; version=1; order=dfs`).
    Car {
        /// Whether a block is sent again each time the walk meets it (`dups=y`).
        dups: bool,
        /// Which blocks under the terminus are sent.
        scope: DagScope,
    },
}

impl ResponseFormat {
    /// The `format` query value for this response type.
    #[must_use]
    pub const fn format_param(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Car { .. } => "car",
        }
    }

    /// The full `Content-Type`, with every CAR parameter this gateway knows (spec: MUST).
    #[must_use]
    pub fn content_type(self) -> String {
        match self {
            Self::Raw => MEDIA_TYPE_RAW.to_owned(),
            Self::Car { dups, .. } => format!(
                "{MEDIA_TYPE_CAR}; version=1; order=dfs; dups={}",
                if dups { "y" } else { "n" }
            ),
        }
    }
}

/// A request the gateway refuses, with the HTTP status it deserves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Malformed or contradictory request (400).
    BadRequest(String),
    /// Every requested response type is one this gateway does not produce (406).
    NotAcceptable(String),
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadRequest(m) | Self::NotAcceptable(m) => f.write_str(m),
        }
    }
}

/// The query parameters of a request that matter to a trustless gateway.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Query {
    format: Option<String>,
    dag_scope: Option<String>,
    entity_bytes: Option<String>,
    car_version: Option<String>,
    car_order: Option<String>,
    car_dups: Option<String>,
}

fn parse_query(query: &str) -> Result<Query, Rejection> {
    let mut parsed = Query::default();
    for (index, pair) in query.split('&').filter(|p| !p.is_empty()).enumerate() {
        if index >= MAX_QUERY_PARAMS {
            return Err(Rejection::BadRequest(format!(
                "more than {MAX_QUERY_PARAMS} query parameters"
            )));
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match key {
            "format" => &mut parsed.format,
            "dag-scope" => &mut parsed.dag_scope,
            "entity-bytes" => &mut parsed.entity_bytes,
            "car-version" => &mut parsed.car_version,
            "car-order" => &mut parsed.car_order,
            "car-dups" => &mut parsed.car_dups,
            // Other path-gateway parameters (filename, download, ...) do not change a trustless
            // response; unknown ones are ignored as HTTP servers usually do.
            _ => continue,
        };
        if slot.replace(value.to_owned()).is_some() {
            return Err(Rejection::BadRequest(format!(
                "query parameter `{key}` is given more than once"
            )));
        }
    }
    Ok(parsed)
}

/// One media range of an `Accept` header.
#[derive(Debug, Clone, PartialEq)]
struct MediaRange<'a> {
    media_type: &'a str,
    params: Vec<(&'a str, &'a str)>,
    q: f32,
}

impl<'a> MediaRange<'a> {
    fn param(&self, name: &str) -> Option<&'a str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

fn parse_accept(accept: &str) -> Vec<MediaRange<'_>> {
    accept
        .split(',')
        .filter_map(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media_type = parts.next().filter(|t| !t.is_empty())?;
            let mut params = Vec::new();
            let mut q = 1.0;
            for param in parts {
                let (key, value) = param.split_once('=').unwrap_or((param, ""));
                let value = value.trim().trim_matches('"');
                if key.trim().eq_ignore_ascii_case("q") {
                    // A malformed weight makes the range unusable rather than preferred.
                    q = value.parse().unwrap_or(0.0);
                } else {
                    params.push((key.trim(), value));
                }
            }
            Some(MediaRange {
                media_type,
                params,
                q,
            })
        })
        .collect()
}

/// CAR parameters as requested, before validation.
#[derive(Debug, Default, Clone, Copy)]
struct CarRequest<'a> {
    version: Option<&'a str>,
    order: Option<&'a str>,
    dups: Option<&'a str>,
}

/// Whether this gateway can produce a CAR with these parameters: only `CARv1`, always in
/// depth-first order (which also satisfies `order=unk`), with or without duplicates.
fn car_variant_supported(car: &CarRequest<'_>) -> bool {
    car.version.is_none_or(|v| v == "1")
        && car.order.is_none_or(|o| o == "dfs" || o == "unk")
        && car.dups.is_none_or(|d| d == "y" || d == "n")
}

fn range_to_car<'a>(range: &MediaRange<'a>) -> CarRequest<'a> {
    CarRequest {
        version: range.param("version"),
        order: range.param("order"),
        dups: range.param("dups"),
    }
}

/// Response formats of other gateway kinds that a trustless gateway does not serve.
const KNOWN_UNSUPPORTED_FORMATS: &[&str] =
    &["dag-json", "dag-cbor", "json", "cbor", "tar", "ipns-record"];

/// Decides the response format from the query string and the `Accept` header.
///
/// # Errors
/// [`Rejection::BadRequest`] for malformed or contradictory parameters, or a missing `Accept`
/// without `format` (the spec's strict trustless mode);
/// [`Rejection::NotAcceptable`] when only unsupported types or CAR variants are requested.
pub fn negotiate(query: Option<&str>, accept: Option<&str>) -> Result<ResponseFormat, Rejection> {
    let query = parse_query(query.unwrap_or(""))?;
    if accept.is_some_and(|a| a.len() > MAX_ACCEPT_LEN) {
        return Err(Rejection::BadRequest(format!(
            "Accept header longer than {MAX_ACCEPT_LEN} bytes"
        )));
    }
    let mut ranges = parse_accept(accept.unwrap_or(""));
    // Stable sort: among equal weights the client's order wins.
    ranges.sort_by(|a, b| b.q.total_cmp(&a.q));
    let accept_car = ranges
        .iter()
        .find(|r| r.q > 0.0 && r.media_type.eq_ignore_ascii_case(MEDIA_TYPE_CAR));

    match query.format.as_deref() {
        Some("raw") => Ok(ResponseFormat::Raw),
        Some("car") => car_format(&query, accept_car.map(range_to_car).unwrap_or_default()),
        Some(other) if KNOWN_UNSUPPORTED_FORMATS.contains(&other) => {
            Err(Rejection::NotAcceptable(format!(
                "format={other} is not served by this trustless gateway; use format=raw or format=car"
            )))
        }
        Some(other) => Err(Rejection::BadRequest(format!(
            "unknown format `{other}`; use format=raw or format=car"
        ))),
        // No Accept, or only wildcards (HTTP clients send `*/*` by default): the client named no
        // trustless type, which the spec's strict mode answers with 400.
        None if ranges.iter().all(|r| r.media_type.ends_with("/*")) => {
            Err(Rejection::BadRequest(format!(
                "this is a trustless gateway: send `Accept: {MEDIA_TYPE_RAW}` or `{MEDIA_TYPE_CAR}`, \
             or add ?format=raw or ?format=car"
            )))
        }
        None => {
            let chosen = ranges.iter().find(|r| {
                r.q > 0.0
                    && (r.media_type.eq_ignore_ascii_case(MEDIA_TYPE_RAW)
                        || (r.media_type.eq_ignore_ascii_case(MEDIA_TYPE_CAR)
                            && car_variant_supported(&range_to_car(r))))
            });
            match chosen {
                Some(r) if r.media_type.eq_ignore_ascii_case(MEDIA_TYPE_RAW) => {
                    Ok(ResponseFormat::Raw)
                }
                Some(r) => car_format(&query, range_to_car(r)),
                None => Err(Rejection::NotAcceptable(format!(
                    "none of the accepted types is served here; accept {MEDIA_TYPE_RAW} or \
                     {MEDIA_TYPE_CAR}; version=1"
                ))),
            }
        }
    }
}

fn car_format(query: &Query, from_accept: CarRequest<'_>) -> Result<ResponseFormat, Rejection> {
    // Query parameters take precedence over the Accept parameters (spec: car-version etc.).
    let car = CarRequest {
        version: query.car_version.as_deref().or(from_accept.version),
        order: query.car_order.as_deref().or(from_accept.order),
        dups: query.car_dups.as_deref().or(from_accept.dups),
    };
    if !car_variant_supported(&car) {
        return Err(Rejection::NotAcceptable(
            "only CAR version=1 with order=dfs|unk and dups=y|n is produced here".to_owned(),
        ));
    }
    let scope = match query.dag_scope.as_deref() {
        None | Some("all") => DagScope::All,
        Some("entity") => DagScope::Entity,
        Some("block") => DagScope::Block,
        Some(other) => {
            return Err(Rejection::BadRequest(format!(
                "unknown dag-scope `{other}`; use block, entity or all"
            )));
        }
    };
    // entity-bytes implies dag-scope=entity; asking for another scope with it is contradictory.
    let scope = match (&query.entity_bytes, scope) {
        (None, scope) => scope,
        (Some(range), DagScope::Entity) => parse_entity_bytes(range)?,
        (Some(range), DagScope::All) if query.dag_scope.is_none() => parse_entity_bytes(range)?,
        (Some(_), _) => {
            return Err(Rejection::BadRequest(
                "entity-bytes implies dag-scope=entity; drop the other dag-scope".to_owned(),
            ));
        }
    };
    Ok(ResponseFormat::Car {
        // The spec: without an explicit choice, a gateway in control of duplicates sends none.
        dups: car.dups == Some("y"),
        scope,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAR_ALL_NO_DUPS: ResponseFormat = ResponseFormat::Car {
        dups: false,
        scope: DagScope::All,
    };

    #[test]
    fn format_parameter_wins_over_accept() {
        assert_eq!(
            negotiate(Some("format=raw"), Some(MEDIA_TYPE_CAR)),
            Ok(ResponseFormat::Raw)
        );
        assert_eq!(
            negotiate(Some("format=car"), Some(MEDIA_TYPE_RAW)),
            Ok(CAR_ALL_NO_DUPS)
        );
    }

    #[test]
    fn accept_picks_the_highest_weight_supported_type() {
        let accept = "text/html, application/vnd.ipld.raw;q=0.5, application/vnd.ipld.car;q=0.9";
        assert_eq!(negotiate(None, Some(accept)), Ok(CAR_ALL_NO_DUPS));
        let accept = "application/vnd.ipld.car;version=2, application/vnd.ipld.raw;q=0.1";
        assert_eq!(negotiate(None, Some(accept)), Ok(ResponseFormat::Raw));
    }

    #[test]
    fn car_parameters_come_from_accept_and_query_overrides_them() {
        let accept = "application/vnd.ipld.car; version=1; order=dfs; dups=y";
        assert_eq!(
            negotiate(Some("dag-scope=entity"), Some(accept)),
            Ok(ResponseFormat::Car {
                dups: true,
                scope: DagScope::Entity
            })
        );
        assert_eq!(
            negotiate(Some("format=car&car-dups=n&dag-scope=block"), Some(accept)),
            Ok(ResponseFormat::Car {
                dups: false,
                scope: DagScope::Block
            })
        );
    }

    #[test]
    fn bad_and_unsupported_requests_are_told_apart() {
        assert!(matches!(
            negotiate(None, None),
            Err(Rejection::BadRequest(_))
        ));
        assert!(matches!(
            negotiate(None, Some("*/*")),
            Err(Rejection::BadRequest(_))
        ));
        assert!(matches!(
            negotiate(Some("format=zip"), None),
            Err(Rejection::BadRequest(_))
        ));
        assert!(matches!(
            negotiate(Some("format=car&dag-scope=most"), None),
            Err(Rejection::BadRequest(_))
        ));
        assert!(matches!(
            negotiate(Some("format=car&format=raw"), None),
            Err(Rejection::BadRequest(_))
        ));
        assert!(matches!(
            negotiate(Some("format=car&entity-bytes=0-10"), None),
            Err(Rejection::BadRequest(_))
        ));
        assert!(matches!(
            negotiate(Some("format=car&entity-bytes=0:10&dag-scope=block"), None),
            Err(Rejection::BadRequest(_))
        ));
        assert!(matches!(
            negotiate(Some("format=dag-json"), None),
            Err(Rejection::NotAcceptable(_))
        ));
        assert!(matches!(
            negotiate(None, Some("text/html")),
            Err(Rejection::NotAcceptable(_))
        ));
        assert!(matches!(
            negotiate(Some("format=car&car-version=2"), None),
            Err(Rejection::NotAcceptable(_))
        ));
        assert!(matches!(
            negotiate(None, Some("application/vnd.ipld.raw;q=0")),
            Err(Rejection::NotAcceptable(_))
        ));
    }

    #[test]
    fn entity_bytes_implies_the_entity_scope() {
        let car = |query| match negotiate(Some(query), None) {
            Ok(ResponseFormat::Car { scope, .. }) => scope,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            car("format=car&entity-bytes=10:20"),
            DagScope::EntityBytes {
                from: 10,
                to: Some(20)
            }
        );
        assert_eq!(
            car("format=car&dag-scope=entity&entity-bytes=-1024:*"),
            DagScope::EntityBytes {
                from: -1024,
                to: None
            }
        );
        assert_eq!(
            car("format=car&entity-bytes=499:-1000"),
            DagScope::EntityBytes {
                from: 499,
                to: Some(-1000)
            }
        );
    }

    #[test]
    fn content_type_names_every_car_parameter() {
        assert_eq!(
            CAR_ALL_NO_DUPS.content_type(),
            "application/vnd.ipld.car; version=1; order=dfs; dups=n"
        );
        assert_eq!(ResponseFormat::Raw.content_type(), MEDIA_TYPE_RAW);
    }
}
