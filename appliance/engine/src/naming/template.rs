//! The built-in file-name template: `{tag}` placeholders, `{{`/`}}` for braces.

use std::fmt::Write;

use chrono::{DateTime, Datelike, Timelike, Utc};
use thiserror::Error;

/// A template tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    StreamName,
    App,
    StartTime,
    EndTime,
    StartTimeMillis,
    EndTimeMillis,
    Duration,
    SessionId,
    MediaSessionId,
    AudioCodec,
    VideoCodec,
    Part,
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
}

impl Tag {
    const ALL: [(&'static str, Tag); 18] = [
        ("streamName", Tag::StreamName),
        ("app", Tag::App),
        ("startTime", Tag::StartTime),
        ("endTime", Tag::EndTime),
        ("startTimeMillis", Tag::StartTimeMillis),
        ("endTimeMillis", Tag::EndTimeMillis),
        ("duration", Tag::Duration),
        ("sessionId", Tag::SessionId),
        ("mediaSessionId", Tag::MediaSessionId),
        ("audioCodec", Tag::AudioCodec),
        ("videoCodec", Tag::VideoCodec),
        ("part", Tag::Part),
        ("year", Tag::Year),
        ("month", Tag::Month),
        ("day", Tag::Day),
        ("hour", Tag::Hour),
        ("minute", Tag::Minute),
        ("second", Tag::Second),
    ];

    /// Known only when a file is finalized: a template using one renders a
    /// placeholder while recording and the file is renamed at the end.
    pub fn needs_end(self) -> bool {
        matches!(self, Tag::EndTime | Tag::EndTimeMillis | Tag::Duration)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Tag(Tag),
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("unknown tag {{{0}}} (known: {1})")]
    UnknownTag(String, String),
    #[error("unclosed '{{' at position {0} (write '{{{{' for a literal brace)")]
    Unclosed(usize),
    #[error("template is empty")]
    Empty,
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
}

/// What a template is rendered with.
#[derive(Clone, Debug)]
pub struct NameFacts<'a> {
    pub app: &'a str,
    pub stream_name: &'a str,
    /// Wall-clock start of the file (of the part, when rotating).
    pub start: DateTime<Utc>,
    /// Wall-clock end, once known.
    pub end: Option<DateTime<Utc>>,
    /// Media duration in milliseconds, once known.
    pub duration_ms: Option<u64>,
    pub session_id: &'a str,
    pub media_session_id: &'a str,
    pub audio_codec: Option<&'a str>,
    pub video_codec: Option<&'a str>,
    /// Part number (1-based) when the recording rotates.
    pub part: Option<u32>,
}

/// What end-dependent tags render as while the file is being written.
pub const IN_PROGRESS: &str = "live";

impl Template {
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        if source.trim().is_empty() {
            return Err(TemplateError::Empty);
        }
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut chars = source.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|p| p.1) == Some('{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek().map(|p| p.1) == Some('}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let rest = &source[i + 1..];
                    let end = rest.find('}').ok_or(TemplateError::Unclosed(i))?;
                    let name = &rest[..end];
                    let tag = Tag::ALL
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, t)| *t)
                        .ok_or_else(|| {
                            TemplateError::UnknownTag(
                                name.to_owned(),
                                Tag::ALL
                                    .iter()
                                    .map(|(n, _)| *n)
                                    .collect::<Vec<_>>()
                                    .join(", "),
                            )
                        })?;
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(Piece::Tag(tag));
                    for _ in 0..name.chars().count() + 1 {
                        chars.next();
                    }
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Template {
            source: source.to_owned(),
            pieces,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn uses(&self, tag: Tag) -> bool {
        self.pieces.contains(&Piece::Tag(tag))
    }

    /// Whether the final name is known only at the end (so the file is renamed).
    pub fn needs_end(&self) -> bool {
        self.pieces
            .iter()
            .any(|p| matches!(p, Piece::Tag(t) if t.needs_end()))
    }

    /// Renders the template (not yet sanitized: see [`super::Sanitizer`]).
    pub fn render(&self, f: &NameFacts<'_>) -> String {
        let mut out = String::new();
        let compact = |t: DateTime<Utc>| t.format("%Y%m%d-%H%M%S").to_string();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Tag(tag) => {
                    let _ = match tag {
                        Tag::StreamName => write!(out, "{}", f.stream_name),
                        Tag::App => write!(out, "{}", f.app),
                        Tag::StartTime => write!(out, "{}", compact(f.start)),
                        Tag::StartTimeMillis => write!(out, "{}", f.start.timestamp_millis()),
                        Tag::EndTime => match f.end {
                            Some(e) => write!(out, "{}", compact(e)),
                            None => write!(out, "{IN_PROGRESS}"),
                        },
                        Tag::EndTimeMillis => match f.end {
                            Some(e) => write!(out, "{}", e.timestamp_millis()),
                            None => write!(out, "{IN_PROGRESS}"),
                        },
                        Tag::Duration => match f.duration_ms {
                            Some(d) => write!(out, "{d}"),
                            None => write!(out, "{IN_PROGRESS}"),
                        },
                        Tag::SessionId => write!(out, "{}", f.session_id),
                        Tag::MediaSessionId => write!(out, "{}", f.media_session_id),
                        Tag::AudioCodec => write!(out, "{}", f.audio_codec.unwrap_or("none")),
                        Tag::VideoCodec => write!(out, "{}", f.video_codec.unwrap_or("none")),
                        Tag::Part => write!(out, "{}", f.part.unwrap_or(1)),
                        Tag::Year => write!(out, "{:04}", f.start.year()),
                        Tag::Month => write!(out, "{:02}", f.start.month()),
                        Tag::Day => write!(out, "{:02}", f.start.day()),
                        Tag::Hour => write!(out, "{:02}", f.start.hour()),
                        Tag::Minute => write!(out, "{:02}", f.start.minute()),
                        Tag::Second => write!(out, "{:02}", f.start.second()),
                    };
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn facts() -> NameFacts<'static> {
        NameFacts {
            app: "live",
            stream_name: "cam1",
            start: Utc.with_ymd_and_hms(2026, 11, 21, 9, 5, 7).unwrap(),
            end: None,
            duration_ms: None,
            session_id: "s1",
            media_session_id: "r1",
            audio_codec: Some("aac"),
            video_codec: Some("h264"),
            part: Some(2),
        }
    }

    #[test]
    fn renders_every_tag() {
        let t = Template::parse(
            "{app}/{year}/{month}/{day}/{hour}{minute}{second}/{streamName}-{startTime}-{startTimeMillis}-{sessionId}-{mediaSessionId}-{videoCodec}-{audioCodec}-{part}",
        )
        .unwrap();
        assert_eq!(
            t.render(&facts()),
            "live/2026/11/21/090507/cam1-20261121-090507-1795251907000-s1-r1-h264-aac-2"
        );
        assert!(!t.needs_end());
    }

    #[test]
    fn end_tags_render_a_placeholder_until_known() {
        let t = Template::parse("{streamName}_{endTime}_{duration}_{endTimeMillis}").unwrap();
        assert!(t.needs_end());
        assert_eq!(t.render(&facts()), "cam1_live_live_live");
        let mut f = facts();
        f.end = Some(Utc.with_ymd_and_hms(2026, 11, 21, 9, 5, 17).unwrap());
        f.duration_ms = Some(10_040);
        assert_eq!(t.render(&f), "cam1_20261121-090517_10040_1795251917000");
    }

    #[test]
    fn escapes_and_errors() {
        assert_eq!(Template::parse("{{x}}").unwrap().render(&facts()), "{x}");
        assert!(matches!(
            Template::parse("{nope}"),
            Err(TemplateError::UnknownTag(n, _)) if n == "nope"
        ));
        assert_eq!(Template::parse("a{app"), Err(TemplateError::Unclosed(1)));
        assert_eq!(Template::parse(" "), Err(TemplateError::Empty));
    }
}
