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
        CoreError::MalformedBody { detail } => format!("请求体不是本接口可接受的JSON：{detail}"),
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
    fn the_header_selects_the_language() {
        let mut h = HeaderMap::new();
        assert_eq!(Language::from_headers(&h), Language::English);
        h.insert("x-language", "zh-cn".parse().expect("header"));
        assert_eq!(Language::from_headers(&h), Language::Chinese);
        h.insert("x-language", "en-us".parse().expect("header"));
        assert_eq!(Language::from_headers(&h), Language::English);
    }
}
