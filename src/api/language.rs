//! Error messages in the languages the APIs speak. RDS picks the language of
//! `error_msg` with `X-Language: en-us | zh-cn`; every other dialect answers in English.

use axum::http::HeaderMap;

use crate::core::CoreError;

tokio::task_local! {
    static CURRENT: Language;
}

/// Runs `f` with `language` as the language of error messages rendered inside it.
pub async fn scope<F: std::future::Future>(language: Language, f: F) -> F::Output {
    CURRENT.scope(language, f).await
}

/// The language of the request being answered (English outside any request).
pub fn current() -> Language {
    CURRENT.try_with(|l| *l).unwrap_or(Language::English)
}

/// A language of error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    English,
    Chinese,
}

impl Language {
    /// Reads `X-Language`; anything but `zh-cn` (case-insensitive) means English, the
    /// documented default.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        match headers.get("x-language").and_then(|v| v.to_str().ok()) {
            Some(v) if v.trim().eq_ignore_ascii_case("zh-cn") => Language::Chinese,
            _ => Language::English,
        }
    }

    /// The message a client sees for `err`; internal causes stay in the log.
    pub fn message(self, err: &CoreError) -> String {
        match self {
            Language::English => match err {
                CoreError::Internal(_) | CoreError::Unexpected { .. } => {
                    "internal error; see the server log".to_owned()
                }
                e => e.to_string(),
            },
            Language::Chinese => chinese(err),
        }
    }
}

fn chinese(err: &CoreError) -> String {
    match err {
        CoreError::MalformedBody { detail } => {
            format!("请求体不是本接口可接受的JSON：{}", detail.zh)
        }
        CoreError::BodyTooLarge { limit } => format!("请求体超过了{limit}字节的上限"),
        CoreError::InvalidField { field, reason } => format!("{field}：{}", reason.zh),
        CoreError::Empty { field } => format!("{field}不能为空"),
        CoreError::TooMany { field, max, got } => {
            format!("{field}包含{got}项，最多允许{max}项")
        }
        CoreError::InvalidTagKey { key, problem } => {
            format!("标签键{key:?}无效：{}", problem.zh())
        }
        CoreError::InvalidTagValue { key, problem } => {
            format!("标签{key:?}的值无效：{}", problem.zh())
        }
        CoreError::DuplicateTagKey { key } => format!("标签键{key:?}在请求中重复出现"),
        CoreError::UnknownResourceType { field, name } => {
            format!("{field}：{name:?}不是tagd支持的资源类型（名称区分大小写，见GET /v1.0/tms/providers）")
        }
        CoreError::ProjectRequired { resource_type } => {
            format!("区域级资源类型{resource_type:?}必须指定project_id")
        }
        CoreError::Unauthenticated { reason } => format!("认证失败：{}", reason.zh),
        CoreError::Forbidden { reason } => format!("无权执行该操作：{}", reason.zh),
        CoreError::TagLimitExceeded {
            resource_id,
            limit,
            would_have,
        } => format!(
            "资源{resource_id}将有{would_have}个标签，超过了每个资源最多{limit}个标签的上限"
        ),
        CoreError::Timeout { seconds } => format!("请求未能在{seconds}秒内完成"),
        CoreError::NotFound { what } => format!("{}不存在", what.zh),
        CoreError::MethodNotAllowed { method, path } => format!("{path}不支持{method}方法"),
        CoreError::Conflict { what } => format!("{what}已存在"),
        CoreError::Internal(_) | CoreError::Unexpected { .. } => {
            "内部错误，请查看服务日志".to_owned()
        }
    }
}

/// serde_json's messages, in Chinese. They come from a small, stable set of templates
/// (serde's `Error` constructors and serde_json's syntax errors); anything else is
/// described generically with the position.
pub fn json_error_in_chinese(err: &serde_json::Error) -> String {
    let position = format!("（第{}行第{}列）", err.line(), err.column());
    let full = err.to_string();
    let message = full
        .rsplit_once(" at line ")
        .map_or(full.as_str(), |(m, _)| m);
    let text = if let Some(field) = message.strip_prefix("missing field ") {
        format!("缺少必填字段{field}")
    } else if let Some(field) = message.strip_prefix("unknown field ") {
        format!(
            "未知字段{}",
            field.split(", expected").next().unwrap_or(field)
        )
    } else if let Some(rest) = message.strip_prefix("invalid type: ") {
        match rest.split_once(", expected ") {
            Some((got, expected)) => {
                format!("类型错误：应为{}，实际为{}", kind(expected), kind(got))
            }
            None => format!("类型错误：{}", kind(rest)),
        }
    } else if let Some(rest) = message.strip_prefix("invalid value: ") {
        match rest.split_once(", expected ") {
            Some((got, expected)) => {
                format!("取值错误：应为{}，实际为{}", kind(expected), kind(got))
            }
            None => format!("取值错误：{}", kind(rest)),
        }
    } else if let Some(rest) = message.strip_prefix("invalid length ") {
        format!("长度错误：{rest}")
    } else if message.starts_with("EOF while parsing") {
        "JSON不完整，意外结束".to_owned()
    } else {
        match message {
            "expected value" => "此处应为JSON值".to_owned(),
            "expected ident" => "此处应为true、false或null".to_owned(),
            "trailing characters" => "JSON之后有多余的字符".to_owned(),
            "trailing comma" => "存在多余的逗号".to_owned(),
            "key must be a string" => "对象的键必须是字符串".to_owned(),
            "expected `,` or `}`" => "此处应为“,”或“}”".to_owned(),
            "expected `,` or `]`" => "此处应为“,”或“]”".to_owned(),
            "expected `:`" => "此处应为“:”".to_owned(),
            "invalid escape" => "无效的转义字符".to_owned(),
            "invalid number" => "无效的数字".to_owned(),
            "number out of range" => "数字超出范围".to_owned(),
            "invalid unicode code point" => "无效的Unicode码点".to_owned(),
            "control character (\\u0000-\\u001F) found while parsing a string" => {
                "字符串中包含控制字符".to_owned()
            }
            "recursion limit exceeded" => "JSON嵌套层数过多".to_owned(),
            _ => "JSON格式或类型错误".to_owned(),
        }
    };
    format!("{text}{position}")
}

/// serde's names of JSON kinds (`a string`, ``integer `1` ``), in Chinese.
fn kind(english: &str) -> String {
    let (word, literal) = match english.split_once(' ') {
        Some((w, rest)) if !["a", "an"].contains(&w) => (w, Some(rest)),
        Some((_, rest)) => (rest, None),
        None => (english, None),
    };
    let name = match word {
        "string" => "字符串",
        "integer" | "u8" | "u16" | "u32" | "u64" | "i8" | "i16" | "i32" | "i64" | "usize" => "整数",
        "floating" => "浮点数",
        "boolean" => "布尔值",
        "sequence" => "数组",
        "map" => "对象",
        "null" | "unit" => "null",
        "struct" => "对象",
        "character" => "字符",
        "option" => "可选值",
        _ => return english.to_owned(),
    };
    match literal {
        Some(l) if l.starts_with('`') || l.starts_with('"') => format!("{name} {l}"),
        _ => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::tags::TextProblem;
    use crate::core::Reason;

    #[test]
    fn chinese_messages_are_chinese_and_keep_the_specifics() {
        let err = CoreError::InvalidTagKey {
            key: "k k".into(),
            problem: TextProblem::TooLong { chars: 37, max: 36 },
        };
        let zh = Language::Chinese.message(&err);
        assert!(
            zh.contains("标签键") && zh.contains("37") && zh.contains("36"),
            "{zh}"
        );
        let en = Language::English.message(&err);
        assert!(en.contains("37 characters"), "{en}");
        let nf = CoreError::NotFound {
            what: Reason::new("instance i1", "实例i1"),
        };
        assert_eq!(Language::Chinese.message(&nf), "实例i1不存在");
    }

    #[test]
    fn json_errors_are_translated_with_their_position() {
        let parse = |s: &str| {
            serde_json::from_str::<std::collections::HashMap<String, String>>(s).expect_err("bad")
        };
        assert_eq!(
            json_error_in_chinese(&parse(r#"{"a": 1}"#)),
            "类型错误：应为字符串，实际为整数 `1`（第1行第7列）"
        );
        assert!(json_error_in_chinese(&parse("{")).starts_with("JSON不完整"));
        assert!(json_error_in_chinese(&parse("{} x")).starts_with("JSON之后有多余的字符"));
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Needs {
            action: String,
        }
        let missing = serde_json::from_str::<Needs>("{}").expect_err("missing");
        assert!(
            json_error_in_chinese(&missing).starts_with("缺少必填字段`action`"),
            "{}",
            json_error_in_chinese(&missing)
        );
    }

    #[test]
    fn the_header_selects_the_language() {
        let mut h = HeaderMap::new();
        assert_eq!(Language::from_headers(&h), Language::English);
        h.insert("x-language", "zh-cn".parse().expect("header"));
        assert_eq!(Language::from_headers(&h), Language::Chinese);
        h.insert("x-language", "en-us".parse().expect("header"));
        assert_eq!(Language::from_headers(&h), Language::English);
    }
}
