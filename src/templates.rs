//! The minijinja environment: every template is compiled into the binary, so an installed
//! `cport` needs no template folder. HTML templates are auto-escaped.

use minijinja::{AutoEscape, Environment};

macro_rules! embed {
    ($env:ident, $($name:literal),* $(,)?) => {
        $( $env.add_template($name, include_str!(concat!("../templates/", $name)))
            .expect(concat!("template ", $name, " parses")); )*
    };
}

/// The templates compiled once for the process, for the few places that render without the
/// application's state (the error page of a request that failed early).
pub fn shared() -> &'static Environment<'static> {
    static ENV: std::sync::OnceLock<Environment<'static>> = std::sync::OnceLock::new();
    ENV.get_or_init(environment)
}

pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|name| if name.contains(".html") { AutoEscape::Html } else { AutoEscape::None });
    // `{{ t|when }}`: an RFC 3339 time as "2026-11-25 13:28 UTC", or on the clock the page's
    // `tz` names (a contact's pages: "2026-11-25 14:28 CET"); staff pages have none.
    env.add_filter("when", |state: &minijinja::State, t: String| -> String {
        let Ok(d) = chrono::DateTime::parse_from_rfc3339(&t) else { return t };
        let zone = state.lookup("tz").and_then(|v| v.as_str().and_then(|z| z.parse::<chrono_tz::Tz>().ok()));
        match zone {
            Some(tz) => d.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string(),
            None => d.with_timezone(&chrono::Utc).format("%Y-%m-%d %H:%M UTC").to_string(),
        }
    });
    // `{{ id|segment }}`: an id as one step of a path (`INV/77` → `INV%2F77`).
    env.add_filter("segment", |id: String| -> String { crate::model::segment(&id) });
    {
        use crate::model::limits::*;
        env.add_global(
            "limits",
            minijinja::context! {
                banner_title => BANNER_TITLE, banner_body => BANNER_BODY,
                person_name => PERSON_NAME, access_note => ACCESS_NOTE,
            },
        );
    }
    embed!(
        env,
        "email/_header.html.j2",
        "email/_footer.html.j2",
        "email/_banners.html.j2",
        "email/_items.html.j2",
        "email/digest.html.j2",
        "email/digest.txt.j2",
        "email/alert.html.j2",
        "email/alert.txt.j2",
        "email/banner.html.j2",
        "email/banner.txt.j2",
        "email/_simple_top.html.j2",
        "email/_simple_bottom.html.j2",
        "email/delegation.html.j2",
        "email/delegation.txt.j2",
        "email/reset.html.j2",
        "email/reset.txt.j2",
        "email/login.html.j2",
        "email/login.txt.j2",
        "email/invite.html.j2",
        "email/invite.txt.j2",
        "email/reply.html.j2",
        "email/reply.txt.j2",
        "email/access.html.j2",
        "email/access.txt.j2",
        "email/chat_code.html.j2",
        "email/chat_code.txt.j2",
        "portal/base.html.j2",
        "portal/message.html.j2",
        "portal/login.html.j2",
        "portal/dashboard.html.j2",
        "portal/visuals.html.j2",
        "portal/visual.html.j2",
        "portal/job.html.j2",
        "portal/delivery.html.j2",
        "portal/preferences.html.j2",
        "portal/password.html.j2",
        "portal/reset.html.j2",
        "portal/link_invalid.html.j2",
        "portal/stock.html.j2",
        "portal/baskets.html.j2",
        "portal/basket.html.j2",
        "portal/orders.html.j2",
        "portal/users.html.j2",
        "portal/enquiry.html.j2",
        "portal/_answer.html.j2",
        "portal/unsubscribe.html.j2",
        "staff/base.html.j2",
        "staff/_ask_first.html.j2",
        "staff/login.html.j2",
        "staff/password.html.j2",
        "staff/overview.html.j2",
        "staff/chase.html.j2",
        "staff/outbox.html.j2",
        "staff/message.html.j2",
        "staff/banners.html.j2",
        "staff/contacts.html.j2",
        "staff/held.html.j2",
        "staff/access.html.j2",
        "staff/error.html.j2",
    );
    env
}
