//! The widget's views and the context they share.
//!
//! [`Ctx`] holds the signals (session, chat state) and the actions on them: sign in and
//! out, token refresh, send/stop/retry, persistence. The views only call these.

mod chat;
mod login;
mod markdown_view;

use std::time::Duration;

use classchat_shared::{ChatRequest, ErrorCode, Role, SessionResponse, Visibility};
use leptos::leptos_dom::helpers::{
    IntervalHandle, TimeoutHandle, request_animation_frame, set_interval_with_handle,
    set_timeout_with_handle,
};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{AbortController, HtmlElement, Storage};

use crate::api;
use crate::error::WidgetError;
use crate::i18n::{Lang, Text};
use crate::state::{ChatState, Conversation, conversation_id};
use crate::storage;

use chat::Chat;
use login::Login;

/// What the loader passes to `mount` (from the script tag's `data-*`).
pub(crate) struct Config {
    /// The server's base URL without a trailing slash.
    pub(crate) server: String,
    /// `data-title`; the class title is shown when absent.
    pub(crate) title: Option<String>,
    pub(crate) lang: Lang,
    /// Hides the panel and focuses the bubble.
    pub(crate) close: Option<js_sys::Function>,
    /// The panel the widget is mounted in.
    pub(crate) root: HtmlElement,
}

/// Shared state and actions (cheap to copy into every closure).
#[derive(Clone, Copy)]
pub(crate) struct Ctx {
    cfg: StoredValue<Config, LocalStorage>,
    pub(crate) t: &'static Text,
    pub(crate) session: RwSignal<Option<SessionResponse>>,
    pub(crate) chat: RwSignal<ChatState>,
    /// The composer's text; kept here so it survives a trip to the login form.
    pub(crate) draft: RwSignal<String>,
    /// Why the login form is showing again (the session ended), if it is.
    pub(crate) notice: RwSignal<Option<WidgetError>>,
    /// The class `chat` belongs to.
    class_id: StoredValue<Option<String>>,
    /// The request in flight: its turn and how to abort it.
    abort: StoredValue<Option<(u32, AbortController)>, LocalStorage>,
    refresh_timer: StoredValue<Option<TimeoutHandle>>,
    /// The reply in flight has been silent past [`HELD_AFTER_MS`] (nothing arrived, not
    /// even a heartbeat): a proxy is probably buffering it.
    pub(crate) held: RwSignal<bool>,
    /// The server has answered but the model has sent no text for [`STARTING_AFTER_MS`]:
    /// it is probably loading (a cold model can take a minute).
    pub(crate) starting: RwSignal<bool>,
    /// How the reply in flight is going, and the check that watches it.
    progress: StoredValue<Progress>,
    held_check: StoredValue<Option<(u32, IntervalHandle)>>,
}

/// What the held-up check needs to know about the reply in flight (times in ms since the epoch).
#[derive(Debug, Clone, Copy, Default)]
struct Progress {
    /// When the request went out.
    sent: f64,
    /// When the last bytes arrived (heartbeats included), or `sent`.
    last_bytes: f64,
    /// The server answered: the stream is open (it opens before the model's first byte).
    opened: bool,
    /// Reply text has arrived.
    text: bool,
}

/// Silence after which a streaming reply counts as held up. The server opens the stream at
/// once and sends a heartbeat every 15 s while the model is silent, so a live stream never
/// goes this long without a byte; a proxy or CDN that buffers the stream does.
const HELD_AFTER_MS: f64 = 25_000.0;

/// Wait for the first text, on an open stream, after which the starting-up line shows.
const STARTING_AFTER_MS: f64 = 4_000.0;

/// The replies in the message list (the last is the newest).
const REPLIES: &str = ".cc-messages>.cc-assistant";
/// The visually hidden status region that reads each reply out once, complete.
const ANNOUNCER: &str = "[data-testid=cc-announce]";

fn now_secs() -> i64 {
    (js_sys::Date::now() / 1000.0) as i64
}

fn local_storage() -> Option<Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

fn new_conversation_id() -> String {
    conversation_id(js_sys::Date::now(), js_sys::Math::random)
}

impl Ctx {
    fn new(cfg: Config) -> Self {
        let t = cfg.lang.text();
        let stored = local_storage()
            .and_then(|s| {
                s.get_item(&storage::session_key(&cfg.server))
                    .ok()
                    .flatten()
            })
            .and_then(|json| storage::decode_session(&json, now_secs()));
        let ctx = Self {
            cfg: StoredValue::new_local(cfg),
            t,
            session: RwSignal::new(None),
            chat: RwSignal::new(ChatState::new(Conversation::new(new_conversation_id()))),
            draft: RwSignal::new(String::new()),
            notice: RwSignal::new(None),
            class_id: StoredValue::new(None),
            abort: StoredValue::new_local(None),
            refresh_timer: StoredValue::new(None),
            held: RwSignal::new(false),
            starting: RwSignal::new(false),
            progress: StoredValue::new(Progress::default()),
            held_check: StoredValue::new(None),
        };
        // Before anything renders: conversations of ended sessions (another student's, on
        // a shared PC) go.
        ctx.prune_conversations(stored.as_ref());
        match stored {
            Some(s) => ctx.sign_in(s),
            None => ctx.forget_session(),
        }
        ctx
    }

    pub(crate) fn server(&self) -> String {
        self.cfg.with_value(|c| c.server.clone())
    }

    /// What the class's conversation visibility tells the student; `None` for `off`.
    pub(crate) fn visibility_text(&self) -> Option<&'static str> {
        let t = self.t;
        self.session.with(|s| match s.as_ref()?.visibility {
            Visibility::Off => None,
            Visibility::Flagged => Some(t.notice_flagged),
            Visibility::Full => Some(t.notice_full),
        })
    }

    /// The header title: `data-title`, else the class's, else a default.
    pub(crate) fn title(&self) -> String {
        self.cfg
            .with_value(|c| c.title.clone())
            .or_else(|| {
                self.session
                    .with(|s| s.as_ref().map(|s| s.class.title.clone()))
            })
            .unwrap_or_else(|| self.t.default_title.to_owned())
    }

    pub(crate) fn lang(&self) -> Lang {
        self.cfg.with_value(|c| c.lang)
    }

    // ---- session -------------------------------------------------------------------

    /// A new session from the access-code form. Conversations stored under earlier sessions
    /// are removed, so the next student on a shared PC starts empty; the one on screen stays
    /// only when the server just ended this student's session (the login notice is up, a
    /// message may wait for retry) before the session's maximum age.
    pub(crate) fn start_session(&self, s: SessionResponse) {
        let resumed = self.notice.with_untracked(Option::is_some);
        if !resumed {
            self.forget_conversations();
        }
        self.prune_conversations(Some(&s));
        self.sign_in(s);
        if resumed {
            self.save();
        }
    }

    /// Takes a stored or refreshed session: stores it and loads the class's conversation.
    fn sign_in(&self, s: SessionResponse) {
        if let Some(store) = local_storage() {
            let _ = store.set_item(
                &storage::session_key(&self.server()),
                &storage::encode_session(&s),
            );
        }
        let same_class = self
            .class_id
            .with_value(|c| c.as_deref() == Some(s.class.id.as_str()));
        let class_id = s.class.id.clone();
        self.notice.set(None);
        self.session.set(Some(s));
        if same_class {
            self.chat.update(ChatState::signed_in_again);
        } else {
            self.load_conversation(&class_id);
        }
        self.schedule_refresh();
    }

    fn forget_session(&self) {
        if let Some(t) = self.refresh_timer.try_update_value(Option::take).flatten() {
            t.clear();
        }
        if let Some(store) = local_storage() {
            let _ = store.remove_item(&storage::session_key(&self.server()));
        }
        self.session.set(None);
    }

    /// The token stopped working: back to the login form, conversation kept unless the
    /// session's maximum age has passed (the student's sitting is over).
    pub(crate) fn sign_in_required(&self, why: WidgetError) {
        self.notice.set(Some(why));
        let Some(ends) = self
            .session
            .with_untracked(|s| s.as_ref().map(|s| s.session_expires_at))
        else {
            return; // already signed out (the chat and the refresh both noticed)
        };
        self.forget_session();
        let left = ends - now_secs();
        if left <= 0 {
            self.forget_conversations();
        } else {
            // Kept for the student's return, but not past the session's maximum age: the
            // next student must not find it behind the login form.
            let ctx = *self;
            self.set_timer(left as u64 + 1, move || ctx.forget_conversations());
        }
    }

    /// The session reached its maximum age with the widget open: everything goes, as at
    /// sign-out, and the login form says why.
    fn session_over(&self) {
        self.sign_in_required(WidgetError::Api {
            code: ErrorCode::TokenExpired,
            retry_after: None,
        });
    }

    /// Sign out (a shared lab PC passes to the next student): revoke the session on the
    /// server (best effort) and remove everything kept for it, stored or on screen.
    pub(crate) fn sign_out(&self) {
        self.stop();
        let token = self
            .session
            .with_untracked(|s| s.as_ref().map(|s| s.token.clone()));
        self.forget_session();
        self.forget_conversations();
        self.remove_stored(|_| true);
        self.notice.set(None);
        if let Some(token) = token {
            let server = self.server();
            spawn_local(async move {
                let _ = api::delete_session(&server, &token).await;
            });
        }
    }

    /// Refreshes the token before it runs out, or ends the session at its maximum age.
    fn schedule_refresh(&self) {
        let now = now_secs();
        let Some((due, ends_in)) = self.session.with_untracked(|s| {
            s.as_ref()
                .map(|s| (storage::refresh_in(s, now), s.session_expires_at - now))
        }) else {
            return;
        };
        match due {
            Some(due) => self.refresh_after(due as u64),
            None => {
                let ctx = *self;
                self.set_timer(ends_in.max(0) as u64 + 1, move || ctx.session_over());
            }
        }
    }

    fn refresh_after(&self, secs: u64) {
        let ctx = *self;
        self.set_timer(secs, move || ctx.refresh());
    }

    /// Runs `f` in `secs` seconds, replacing the timer set before.
    fn set_timer(&self, secs: u64, f: impl FnOnce() + 'static) {
        if let Some(t) = self.refresh_timer.try_update_value(Option::take).flatten() {
            t.clear();
        }
        // Browsers fire longer timeouts (over 2^31 ms) at once.
        let secs = secs.min(2_000_000);
        let handle = set_timeout_with_handle(f, Duration::from_secs(secs));
        self.refresh_timer.set_value(handle.ok());
    }

    fn refresh(&self) {
        let Some(old) = self.session.get_untracked() else {
            return;
        };
        let ctx = *self;
        let server = self.server();
        spawn_local(async move {
            let result = api::refresh_session(&server, &old.token).await;
            // Ignore the answer if the student signed out or in meanwhile.
            let current = ctx
                .session
                .with_untracked(|s| s.as_ref().map(|s| s.token == old.token))
                .unwrap_or(false);
            if !current {
                return;
            }
            match result {
                Ok(fresh) => ctx.sign_in(fresh),
                Err(e) if e.needs_sign_in() => ctx.sign_in_required(e),
                // Offline or a server hiccup: try again while the token still works.
                Err(_) if old.expires_at - now_secs() > 40 => ctx.refresh_after(30),
                Err(_) => {}
            }
        });
    }

    // ---- conversation --------------------------------------------------------------

    /// Shows the class's stored conversation if it belongs to the current session.
    fn load_conversation(&self, class_id: &str) {
        self.stop();
        let key = storage::conversation_key(&self.server(), class_id);
        let stored = self.session.with_untracked(|s| {
            let s = s.as_ref()?;
            let json = local_storage()?.get_item(&key).ok().flatten()?;
            storage::decode_conversation(&json, s, now_secs())
        });
        let conversation = stored.unwrap_or_else(|| Conversation::new(new_conversation_id()));
        self.class_id.set_value(Some(class_id.to_owned()));
        self.chat.update(|c| {
            // A later turn number, so events of a request abandoned here stay ignored.
            let turn = c.turn + 1;
            *c = ChatState::new(conversation);
            c.turn = turn;
        });
    }

    /// Clears the conversation on screen and the draft, and removes every stored
    /// conversation of this server.
    fn forget_conversations(&self) {
        self.stop();
        self.class_id.set_value(None);
        self.chat.update(|c| c.reset(new_conversation_id()));
        self.draft.set(String::new());
        self.announce(None);
        let server = self.server();
        self.remove_stored(|key| storage::is_conversation_key(&server, key));
    }

    /// Removes the stored conversations that may not be shown under `session` (all of
    /// them without one): another session's, past their session's maximum age, unreadable.
    fn prune_conversations(&self, session: Option<&SessionResponse>) {
        let server = self.server();
        let now = now_secs();
        let Some(store) = local_storage() else {
            return;
        };
        self.remove_stored(|key| {
            storage::is_conversation_key(&server, key)
                && session
                    .zip(store.get_item(key).ok().flatten())
                    .and_then(|(s, json)| storage::decode_conversation(&json, s, now))
                    .is_none()
        });
    }

    /// Removes this server's keys that `pick` selects from localStorage.
    fn remove_stored(&self, pick: impl Fn(&str) -> bool) {
        let server = self.server();
        let Some(store) = local_storage() else {
            return;
        };
        let keys: Vec<String> = (0..store.length().unwrap_or(0))
            .filter_map(|i| store.key(i).ok().flatten())
            .filter(|k| storage::is_own_key(&server, k) && pick(k))
            .collect();
        for key in keys {
            let _ = store.remove_item(&key);
        }
    }

    /// Applies a state change and saves the conversation.
    fn change<R>(&self, f: impl FnOnce(&mut ChatState) -> R) -> Option<R> {
        let r = self.chat.try_update(f);
        self.save();
        r
    }

    /// Stores the conversation under the current session (nothing once signed out).
    fn save(&self) {
        let Some(class_id) = self.class_id.get_value() else {
            return;
        };
        let Some(json) = self.session.with_untracked(|s| {
            let s = s.as_ref()?;
            Some(
                self.chat
                    .with_untracked(|c| storage::encode_conversation(&c.conversation, s)),
            )
        }) else {
            return;
        };
        if let Some(store) = local_storage() {
            let _ = store.set_item(&storage::conversation_key(&self.server(), &class_id), &json);
        }
    }

    /// Sends the draft; false (and an explanation in the error area) when it cannot go.
    pub(crate) fn send(&self, text: &str) -> bool {
        match self.change(|c| c.send(text)) {
            Some(Ok((turn, req))) => {
                self.run(turn, req);
                true
            }
            Some(Err(problem)) => {
                self.chat.update(|c| c.refuse(problem));
                false
            }
            None => false,
        }
    }

    pub(crate) fn retry(&self) {
        if let Some(Some((turn, req))) = self.change(ChatState::retry) {
            self.run(turn, req);
        }
    }

    /// Stops the reply in flight (what arrived stays).
    pub(crate) fn stop(&self) {
        if let Some((_, ctrl)) = self.abort.try_update_value(Option::take).flatten() {
            ctrl.abort();
        }
    }

    pub(crate) fn new_conversation(&self) {
        self.stop();
        self.change(|c| c.reset(new_conversation_id()));
        self.announce(None);
    }

    /// Sets the status region's text (`None` empties it). Written to the DOM directly: the
    /// region has no other content.
    fn announce(&self, text: Option<&str>) {
        self.cfg.try_with_value(|c| {
            if let Some(region) = matching(&c.root, ANNOUNCER).and_then(|l| l.item(0)) {
                region.set_text_content(text);
            }
        });
    }

    /// Puts the reply just completed, as shown, in the status region: screen readers read
    /// it once, whole (the message list is not live: it would read every token).
    fn announce_reply(&self) {
        let answered = self.chat.with_untracked(|c| {
            c.conversation
                .messages
                .last()
                .is_some_and(|m| m.role == Role::Assistant)
        });
        if !answered {
            return; // nothing but blanks arrived: no reply was added
        }
        let ctx = *self;
        // A frame later the finished reply has replaced the streaming one in the list.
        request_animation_frame(move || {
            let reply = ctx
                .cfg
                .try_with_value(|c| matching(&c.root, REPLIES))
                .flatten()
                .and_then(|l| l.item(l.length().checked_sub(1)?));
            if let Some(reply) = reply {
                ctx.announce(Some(&reply.unchecked_into::<HtmlElement>().inner_text()));
            }
        });
    }

    /// Hides the panel (the loader's `close`), stopping a reply in flight.
    pub(crate) fn close(&self) {
        self.stop();
        self.cfg.with_value(|c| {
            if let Some(close) = &c.close {
                let _ = close.call0(&JsValue::NULL);
            }
        });
    }

    /// Starts checking `turn`'s reply for [`HELD_AFTER_MS`] of silence (replacing any
    /// earlier check), or stops the check if it is still `turn`'s.
    fn watch_for_held(&self, turn: u32, on: bool) {
        let current = self
            .held_check
            .try_update_value(|c| c.take_if(|(t, _)| on || *t == turn))
            .flatten();
        if let Some((_, h)) = current {
            h.clear();
            self.held.set(false);
            self.starting.set(false);
        }
        if !on {
            return;
        }
        let ctx = *self;
        let now = js_sys::Date::now();
        ctx.progress.set_value(Progress {
            sent: now,
            last_bytes: now,
            ..Progress::default()
        });
        let check = move || {
            let p = ctx.progress.get_value();
            let now = js_sys::Date::now();
            let held = now - p.last_bytes > HELD_AFTER_MS;
            if held != ctx.held.get_untracked() {
                ctx.held.set(held);
            }
            let starting = !held && p.opened && !p.text && now - p.sent > STARTING_AFTER_MS;
            if starting != ctx.starting.get_untracked() {
                ctx.starting.set(starting);
            }
        };
        if let Ok(h) = set_interval_with_handle(check, Duration::from_secs(1)) {
            ctx.held_check.set_value(Some((turn, h)));
        }
    }

    fn run(&self, turn: u32, req: ChatRequest) {
        let Some(token) = self
            .session
            .with_untracked(|s| s.as_ref().map(|s| s.token.clone()))
        else {
            let signed_out = WidgetError::Api {
                code: ErrorCode::InvalidToken,
                retry_after: None,
            };
            self.change(|c| c.failed(turn, signed_out));
            return;
        };
        let ctrl = AbortController::new().ok();
        let signal = ctrl.as_ref().map(AbortController::signal);
        self.abort.set_value(ctrl.map(|c| (turn, c)));
        let ctx = *self;
        let server = self.server();
        // Emptied, so that a reply repeating the last word for word is announced too.
        ctx.announce(None);
        ctx.watch_for_held(turn, true);
        spawn_local(async move {
            let chat = ctx.chat;
            let result = api::stream_chat(
                &server,
                &token,
                &req,
                signal.as_ref(),
                |text| {
                    chat.update(|c| c.delta(turn, text));
                    ctx.progress.update_value(|p| p.text = true);
                    if ctx.starting.get_untracked() {
                        ctx.starting.set(false);
                    }
                },
                || {
                    ctx.progress.update_value(|p| {
                        p.last_bytes = js_sys::Date::now();
                        p.opened = true;
                    });
                    if ctx.held.get_untracked() {
                        ctx.held.set(false);
                    }
                },
                |help| chat.update(|c| c.help = Some(help)),
            )
            .await;
            ctx.watch_for_held(turn, false);
            ctx.abort.update_value(|a| {
                if a.as_ref().is_some_and(|(t, _)| *t == turn) {
                    *a = None;
                }
            });
            match result {
                Ok(limits) => {
                    ctx.change(|c| c.done(turn, limits));
                    ctx.announce_reply();
                }
                Err(e) => {
                    let sign_in = e.needs_sign_in();
                    ctx.change(|c| c.failed(turn, e.clone()));
                    if sign_in {
                        ctx.sign_in_required(e);
                    }
                }
            }
        });
    }
}

/// Reads the loader's config object; `root` is the panel to mount in.
pub(crate) fn config_from_js(v: &JsValue, root: HtmlElement) -> Config {
    let get = |k: &str| {
        js_sys::Reflect::get(v, &JsValue::from_str(k))
            .ok()
            .and_then(|x| x.as_string())
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    let close = js_sys::Reflect::get(v, &JsValue::from_str("close"))
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
    let navigator = web_sys::window().and_then(|w| w.navigator().language());
    let server = get("server")
        .or_else(|| web_sys::window().and_then(|w| w.location().origin().ok()))
        .unwrap_or_default();
    Config {
        server: server.trim_end_matches('/').to_owned(),
        title: get("title"),
        lang: Lang::pick(get("lang").as_deref(), navigator.as_deref()),
        close,
        root,
    }
}

/// The elements under `root` that `selector` matches. (`querySelectorAll` also where one
/// would do: the focus trap needs it anyway, so the wasm carries one browser binding less.)
fn matching(root: &HtmlElement, selector: &str) -> Option<web_sys::NodeList> {
    root.query_selector_all(selector).ok()
}

/// What Tab can reach in the widget (nothing in it is focusable yet not rendered).
const FOCUSABLE: &str = "a[href],button:enabled,input:enabled,textarea:enabled,[tabindex='0']";

/// Keeps Tab and Shift+Tab inside `root` (the panel is a modal dialog): from the last
/// control to the first and back, and from `.cc-app` itself (where focus is after a click
/// on text) into the controls. Inside the `/embed` iframe too, where the browser would
/// otherwise move on to the host page.
fn keep_tab_inside(root: &HtmlElement, ev: &web_sys::KeyboardEvent) {
    let Ok(all) = root.query_selector_all(FOCUSABLE) else {
        return;
    };
    let n = all.length();
    let from = ev.target().map(JsValue::from);
    let at = (0..n).find(|&i| all.item(i).map(JsValue::from) == from);
    let to = match (ev.shift_key(), at) {
        (true, None | Some(0)) => n.checked_sub(1),
        (false, None) => Some(0),
        (false, Some(i)) if i + 1 == n => Some(0),
        _ => None,
    };
    if let Some(to) = to {
        ev.prevent_default();
        if let Some(el) = all.item(to) {
            let _ = el.unchecked_into::<HtmlElement>().focus();
        }
    }
}

fn icon(d: &'static str) -> impl IntoView {
    view! {
        <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false">
            <path d=d fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"/>
        </svg>
    }
}

/// The class's visibility notice (nothing while `off`); one view for the header's and the
/// one above the messages, so the wasm holds it once.
pub(crate) fn visibility_notice(ctx: Ctx, class: &'static str, id: &'static str) -> impl IntoView {
    move || {
        ctx.visibility_text()
            .map(|n| view! { <p class=class data-testid=id>{n}</p> })
    }
}

/// The whole widget inside the panel.
#[component]
#[allow(unreachable_pub)] // the macro makes a `pub` props struct
pub(crate) fn App(config: Config, root: HtmlElement) -> impl IntoView {
    let ctx = Ctx::new(config);
    let t = ctx.t;
    // The loader hides the panel with its bubble too; it then fires `cc-hide` on the
    // panel, and a reply in flight is stopped (closing the widget cancels upstream work).
    let on_hide = Closure::<dyn Fn()>::new(move || ctx.stop());
    let _ = root.add_event_listener_with_callback("cc-hide", on_hide.as_ref().unchecked_ref());
    on_hide.forget();
    let signed_in = Memo::new(move |_| ctx.session.with(Option::is_some));
    let modal = ctx.cfg.with_value(|c| c.close.is_some());
    let on_keydown = move |ev: web_sys::KeyboardEvent| match ev.key().as_str() {
        "Escape" => {
            ev.prevent_default();
            ctx.close();
        }
        // Only where the widget is a dialog that can close (not the /embed page of its own).
        "Tab" if modal => keep_tab_inside(&root, &ev),
        _ => {}
    };
    let confirm_new = move |_| {
        ctx.new_conversation();
    };
    view! {
        // tabindex -1: a click on text moves focus here, not out to the host page, so the
        // Tab that follows still wraps.
        <div class="cc-app" lang=ctx.lang().tag() tabindex="-1" on:keydown=on_keydown>
            <header class="cc-header">
                <h2 class="cc-title" id="cc-title" data-testid="cc-title">{move || ctx.title()}</h2>
                <Show when=move || signed_in.get()>
                    <button type="button" class="cc-icon" data-testid="cc-new"
                        aria-label=t.new_conversation title=t.new_conversation on:click=confirm_new>
                        {icon("M12 5v14M5 12h14")}
                    </button>
                    <button type="button" class="cc-icon" data-testid="cc-signout"
                        aria-label=t.sign_out title=t.sign_out on:click=move |_| ctx.sign_out()>
                        {icon("M15 4h4v16h-4M10 8l-4 4 4 4M6 12h10")}
                    </button>
                </Show>
                <button type="button" class="cc-icon" data-testid="cc-close"
                    aria-label=t.close title=t.close on:click=move |_| ctx.close()>
                    {icon("M6 6l12 12M18 6L6 18")}
                </button>
                {visibility_notice(ctx, "cc-hn", "cc-notice-header")}
            </header>
            {move || if signed_in.get() {
                view! { <Chat ctx=ctx/> }.into_any()
            } else {
                view! { <Login ctx=ctx/> }.into_any()
            }}
            <div class="cc-sr" role="status" data-testid="cc-announce"></div>
        </div>
    }
}
