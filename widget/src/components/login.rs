//! The access-code form.

use classchat_shared::SessionRequest;
use classchat_shared::limits::{MAX_ACCESS_CODE_CHARS, MAX_DISPLAY_NAME_CHARS};
use leptos::html::Input;
use leptos::prelude::*;
use leptos::task::spawn_local;
use web_sys::SubmitEvent;

use super::Ctx;
use crate::api;

#[component]
#[allow(unreachable_pub)] // the macro makes a `pub` props struct
pub(crate) fn Login(ctx: Ctx) -> impl IntoView {
    let t = ctx.t;
    let code_ref = NodeRef::<Input>::new();
    let name_ref = NodeRef::<Input>::new();
    let busy = RwSignal::new(false);
    let error = RwSignal::new(String::new());
    let focus_code = move || {
        if let Some(el) = code_ref.get_untracked() {
            let _ = el.focus();
        }
    };
    Effect::new(move |_| {
        if let Some(el) = code_ref.get() {
            let _ = el.focus();
        }
    });

    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let value = |r: NodeRef<Input>| {
            r.get_untracked()
                .map(|e| e.value().trim().to_owned())
                .unwrap_or_default()
        };
        let code = value(code_ref);
        let name = value(name_ref);
        let problem = if code.is_empty() {
            Some(t.err_code_empty)
        } else if code.chars().count() > MAX_ACCESS_CODE_CHARS {
            Some(t.err_invalid_code)
        } else if name.chars().count() > MAX_DISPLAY_NAME_CHARS {
            Some(t.err_name_too_long)
        } else {
            None
        };
        if let Some(p) = problem {
            error.set(p.to_owned());
            focus_code();
            return;
        }
        error.set(String::new());
        busy.set(true);
        let req = SessionRequest {
            access_code: code,
            display_name: (!name.is_empty()).then_some(name),
        };
        let server = ctx.server();
        spawn_local(async move {
            let result = api::create_session(&server, &req).await;
            // After a successful sign-in this form is gone; its signals may be disposed.
            busy.try_set(false);
            match result {
                Ok(session) => ctx.start_session(session),
                Err(e) => {
                    error.try_set(e.login_message(t));
                    focus_code();
                }
            }
        });
    };

    view! {
        <form class="cc-login" data-testid="cc-login" on:submit=submit novalidate>
            <p class="cc-intro">{t.login_intro}</p>
            {move || ctx.notice.get().map(|why| view! {
                <p class="cc-notice" data-testid="cc-login-notice">{why.chat_message(t)}</p>
            })}
            <label for="cc-code">{t.access_code}</label>
            <input id="cc-code" data-testid="cc-code" node_ref=code_ref type="text"
                autocomplete="off" autocapitalize="off" spellcheck="false"
                maxlength=MAX_ACCESS_CODE_CHARS.to_string() required />
            <label for="cc-name">{t.your_name}</label>
            <input id="cc-name" data-testid="cc-name" node_ref=name_ref type="text"
                autocomplete="nickname" maxlength=MAX_DISPLAY_NAME_CHARS.to_string() />
            <p class="cc-error" data-testid="cc-login-error" role="alert">{move || error.get()}</p>
            <button type="submit" class="cc-primary" data-testid="cc-login-submit"
                disabled=move || busy.get() aria-busy=move || busy.get().to_string()>
                {move || if busy.get() { t.signing_in } else { t.sign_in }}
            </button>
        </form>
    }
}
