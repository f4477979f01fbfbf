//! Where a visitor came from: UTM tags, ad click ids, referrer, page, IP and
//! user agent, taken from `context` (or the page URL's query) at ingest so
//! end-to-end analytics never has to re-parse raw payloads.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribution {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_medium: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_campaign: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_term: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gclid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yclid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fbclid: Option<String>,
    /// Meta's click id of a Click-to-WhatsApp ad.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctwa_clid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

impl Attribution {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    pub fn from_payload(payload: &Map<String, Value>, request_ip: Option<&str>) -> Self {
        let context = payload.get("context").and_then(Value::as_object);
        let properties = payload.get("properties").and_then(Value::as_object);
        let page = context
            .and_then(|c| c.get("page"))
            .and_then(Value::as_object);
        let campaign = context
            .and_then(|c| c.get("campaign"))
            .and_then(Value::as_object);

        let page_url = text(page, "url").or_else(|| text(properties, "url"));
        let query = QueryParams::from_page(page_url.as_deref(), text(page, "search").as_deref());
        let from_campaign_or_query =
            |key: &str, param: &str| text(campaign, key).or_else(|| query.get(param));
        Self {
            utm_source: from_campaign_or_query("source", "utm_source"),
            utm_medium: from_campaign_or_query("medium", "utm_medium"),
            utm_campaign: from_campaign_or_query("name", "utm_campaign"),
            utm_term: from_campaign_or_query("term", "utm_term"),
            utm_content: from_campaign_or_query("content", "utm_content"),
            gclid: query.get("gclid"),
            yclid: query.get("yclid"),
            fbclid: query.get("fbclid"),
            ctwa_clid: from_campaign_or_query("ctwa_clid", "ctwa_clid"),
            referrer: text(page, "referrer")
                .or_else(|| text(properties, "referrer"))
                .or_else(|| {
                    let referrer = context
                        .and_then(|c| c.get("referrer"))
                        .and_then(Value::as_object);
                    text(referrer, "url")
                }),
            page_url,
            ip: text(context, "ip").or_else(|| request_ip.map(str::to_owned)),
            user_agent: text(context, "userAgent"),
        }
    }
}

fn text(object: Option<&Map<String, Value>>, key: &str) -> Option<String> {
    object?
        .get(key)?
        .as_str()
        .map(|s| s.replace('\0', ""))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// Query parameters of the landing page, from its URL or `context.page.search`.
struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    fn from_page(url: Option<&str>, search: Option<&str>) -> Self {
        let from_url = url
            .and_then(|u| Url::parse(u).ok())
            .map(|u| u.query_pairs().into_owned().collect::<Vec<_>>())
            .unwrap_or_default();
        let from_search = search
            .map(|s| {
                url::form_urlencoded::parse(s.trim_start_matches('?').as_bytes())
                    .into_owned()
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        Self(from_url.into_iter().chain(from_search).collect())
    }

    fn get(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(key, value)| key == name && !value.is_empty())
            .map(|(_, value)| value.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attribution(payload: Value) -> Attribution {
        let map = payload.as_object().cloned().unwrap_or_default();
        Attribution::from_payload(&map, Some("10.1.2.3"))
    }

    #[test]
    fn utm_and_click_ids_come_from_the_landing_url() {
        let a = attribution(json!({"context": {"page": {
            "url": "https://shop.example/?utm_source=yandex&utm_medium=cpc&utm_campaign=spring&yclid=777&gclid=G1",
            "referrer": "https://ya.ru/"
        }}}));
        assert_eq!(a.utm_source.as_deref(), Some("yandex"));
        assert_eq!(a.utm_medium.as_deref(), Some("cpc"));
        assert_eq!(a.utm_campaign.as_deref(), Some("spring"));
        assert_eq!(a.yclid.as_deref(), Some("777"));
        assert_eq!(a.gclid.as_deref(), Some("G1"));
        assert_eq!(a.referrer.as_deref(), Some("https://ya.ru/"));
        assert_eq!(a.ip.as_deref(), Some("10.1.2.3"));
    }

    #[test]
    fn context_campaign_wins_over_the_url() {
        let a = attribution(json!({"context": {
            "campaign": {"source": "vk", "name": "Борщ"},
            "page": {"search": "?utm_source=google&fbclid=F"},
            "ip": "203.0.113.9",
            "userAgent": "Mozilla/5.0"
        }}));
        assert_eq!(a.utm_source.as_deref(), Some("vk"));
        assert_eq!(a.utm_campaign.as_deref(), Some("Борщ"));
        assert_eq!(a.fbclid.as_deref(), Some("F"));
        assert_eq!(a.ip.as_deref(), Some("203.0.113.9"));
        assert_eq!(a.user_agent.as_deref(), Some("Mozilla/5.0"));
    }

    #[test]
    fn nothing_known_is_empty_but_for_the_request_ip() {
        let a = Attribution::from_payload(&Map::new(), None);
        assert!(a.is_empty());
    }
}
