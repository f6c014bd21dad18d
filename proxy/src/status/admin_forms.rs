//! The pages on the admin listener (`admin_listen`): the same pages as the public listener's, with delete
//! and block forms on the module page, and the two form posts they make (`/-/admin/delete`,
//! `/-/admin/block`), carried out by the [`Admin`] operations and answered with a redirect back to the
//! module page. Whoever reaches the admin listener administers; a form posted from another site (a page
//! the administrator's browser has open) is refused, by its `Sec-Fetch-Site` or `Origin` header.

use bytes::Bytes;
use ferry_module::{ModulePath, Version};
use http::{HeaderValue, Method, Response, StatusCode};

use crate::admin::{Admin, AdminError};
use crate::answer::into_response;
use crate::body::{self, Body};
use crate::request::Route;
use crate::service::Proxy;

/// A request to the admin listener outside `/admin/v1/`: a page, a form post, or a 404 saying what is
/// served here. `form` is the request's body (empty for a GET).
pub async fn answer(
    proxy: &Proxy,
    admin: &Admin,
    request: &http::request::Parts,
    form: Bytes,
    may: &(dyn Fn(&str, &str, &str) -> Result<(), AdminError> + Sync),
) -> Result<Response<Body>, AdminError> {
    let path = request.uri.path();
    if request.method == Method::POST {
        let action = match path {
            "/-/admin/delete" => Action::Delete,
            "/-/admin/block" => Action::Block,
            _ => return Err(not_here(path)),
        };
        same_site(request)?;
        return post(admin, action, &form, may).await;
    }
    let route = Route::of(&request.uri, &request.headers, None);
    match (route.endpoint, proxy.pages()) {
        (Ok(endpoint), Some(pages))
            if endpoint.is_page() && matches!(request.method, Method::GET | Method::HEAD) =>
        {
            let answer = pages.answer(proxy, request, &endpoint, true).await;
            Ok(into_response(answer, &request.method))
        }
        _ => Err(not_here(path)),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Delete,
    Block,
}

fn not_here(path: &str) -> AdminError {
    let shown: String = path.chars().take(100).collect();
    AdminError::NotFound(format!(
        "{shown:?}: the admin listener serves the admin API under /admin/v1/ and the status pages (/, /-/search, /-/module/PATH)"
    ))
}

/// Refuses a form posted from another site: browsers say where a request comes from in `Sec-Fetch-Site`
/// (or at least `Origin`); a request without either is not a browser's cross-site post.
fn same_site(request: &http::request::Parts) -> Result<(), AdminError> {
    let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site")
        && !matches!(site, "same-origin" | "none")
    {
        return Err(AdminError::BadRequest(format!(
            "a form posted from another site ({site}) is refused: post it from this listener's own page"
        )));
    }
    if let (Some(origin), Some(host)) = (header("origin"), header("host"))
        && origin.split_once("://").map(|(_, rest)| rest) != Some(host)
    {
        return Err(AdminError::BadRequest(format!(
            "a form posted from {origin} is refused: post it from this listener's own page"
        )));
    }
    Ok(())
}

/// Carries a form out and sends the browser back to the module page.
/// `may`: whether the caller may (action, module, version), else the 403 (the admin API's access rules).
async fn post(
    admin: &Admin,
    action: Action,
    form: &[u8],
    may: &(dyn Fn(&str, &str, &str) -> Result<(), AdminError> + Sync),
) -> Result<Response<Body>, AdminError> {
    let field = |name: &str| {
        url::form_urlencoded::parse(form)
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.trim().to_string())
            .unwrap_or_default()
    };
    let bad = |e: ferry_module::InvalidInput| AdminError::BadRequest(e.to_string());
    let module = ModulePath::new(&field("module")).map_err(bad)?;
    let version = Version::new(&field("version")).map_err(bad)?;
    let verb = match action {
        Action::Delete => "delete",
        Action::Block => "block",
    };
    may(verb, module.as_str(), version.as_str())?;
    match action {
        Action::Delete => admin.delete(&module, &version).await?,
        Action::Block => {
            let reason = field("reason");
            if reason.is_empty() {
                return Err(AdminError::BadRequest(
                    "a block needs a reason: say why the version is refused".into(),
                ));
            }
            admin.block(&module, &version, &reason).await?;
        }
    }
    let location = format!("/-/module/{module}");
    let mut response = Response::new(body::empty());
    *response.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(location) = HeaderValue::from_str(&location) {
        response
            .headers_mut()
            .insert(http::header::LOCATION, location);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post_from(headers: &[(&str, &str)]) -> http::request::Parts {
        let mut request = http::Request::post("/-/admin/block");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn a_form_from_another_site_is_refused() {
        assert!(same_site(&post_from(&[("sec-fetch-site", "same-origin")])).is_ok());
        assert!(same_site(&post_from(&[])).is_ok());
        assert!(same_site(&post_from(&[("sec-fetch-site", "cross-site")])).is_err());
        let own = [("host", "127.0.0.1:9"), ("origin", "http://127.0.0.1:9")];
        assert!(same_site(&post_from(&own)).is_ok());
        let other = [("host", "127.0.0.1:9"), ("origin", "https://evil.example")];
        assert!(same_site(&post_from(&other)).is_err());
    }
}
