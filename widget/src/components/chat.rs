//! The conversation: message list, streaming reply, error area and composer.

use std::time::Duration;

use classchat_shared::{ChatMessage, Role};
use leptos::html::{Div, Textarea};
use leptos::leptos_dom::helpers::{request_animation_frame, set_interval_with_handle};
use leptos::prelude::*;
use web_sys::{KeyboardEvent, SubmitEvent};

use super::Ctx;
use super::markdown_view::{markdown, streaming_markdown};
use crate::error::WidgetError;
use crate::i18n::Text;
use crate::state::ChatState;

/// `HH:MM`, local time, of a moment in ms since the epoch, rounded up to the minute (so
/// a student is never told too early) after allowing 2 s for the trip from the server:
/// a day that ends at midnight reads `00:00`, not `23:59`.
fn clock_at(ms: f64) -> String {
    let minute = ((ms - 2000.0) / 60_000.0).ceil() * 60_000.0;
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(minute));
    format!("{:02}:{:02}", d.get_hours(), d.get_minutes())
}

/// The error area's sentence at `now` (ms); a refusal by a limit counts down.
fn error_sentence(error: &WidgetError, t: &'static Text, now: u64) -> String {
    match (error, error.wait_until()) {
        (WidgetError::Limited { limit, .. }, Some(until)) => {
            let left = until.saturating_sub(now).div_ceil(1000);
            t.limit_hit(*limit, left, Some(&clock_at(until as f64)))
        }
        _ => error.chat_message(t),
    }
}

fn message_view(m: &ChatMessage) -> AnyView {
    match m.role {
        Role::User => view! {
            <div class="cc-msg cc-user" data-testid="cc-msg" data-role="user">{m.content.clone()}</div>
        }
        .into_any(),
        _ => assistant_bubble(&m.content),
    }
}

fn assistant_bubble(text: &str) -> AnyView {
    view! {
        <div class="cc-msg cc-assistant" data-testid="cc-msg" data-role="assistant">
            {markdown(text)}
        </div>
    }
    .into_any()
}

/// The reply arriving for the current turn, rendered again on each `frame` (only its
/// open end is).
fn streaming_bubble(chat: RwSignal<ChatState>, frame: RwSignal<u32>) -> AnyView {
    let tail_from = move |from: usize| {
        frame.track();
        chat.with_untracked(|c| {
            c.partial
                .as_deref()
                .and_then(|p| p.get(from..))
                .map(str::to_owned)
        })
    };
    view! {
        <div class="cc-msg cc-assistant" data-testid="cc-msg" data-role="assistant" aria-busy="true">
            {streaming_markdown(tail_from)}
        </div>
    }
    .into_any()
}

fn typing(t: &'static Text) -> AnyView {
    view! {
        <div class="cc-msg cc-assistant cc-typing" data-testid="cc-msg" data-role="assistant" aria-busy="true">
            <span class="cc-dot"></span><span class="cc-dot"></span><span class="cc-dot"></span>
            <span class="cc-sr">{t.typing}</span>
        </div>
    }
    .into_any()
}

#[component]
#[allow(unreachable_pub)] // the macro makes a `pub` props struct
pub(crate) fn Chat(ctx: Ctx) -> impl IntoView {
    let t = ctx.t;
    let chat = ctx.chat;
    let list_ref = NodeRef::<Div>::new();
    let input_ref = NodeRef::<Textarea>::new();
    let draft = ctx.draft;
    // Follow the reply unless the student scrolled up to read.
    let stick = StoredValue::new(true);

    let shape = Memo::new(move |_| {
        chat.with(|c| (c.conversation.id.clone(), c.conversation.messages.len()))
    });
    // Per turn in flight: whether text has arrived yet. Not the text itself: copying and
    // comparing the whole reply on every delta would grow with its length.
    let reply =
        Memo::new(move |_| chat.with(|c| c.partial.as_ref().map(|p| (c.turn, p.is_empty()))));
    let streaming = Memo::new(move |_| reply.with(Option::is_some));
    // Deltas can arrive far faster than the screen refreshes (2,000 in a few seconds):
    // the streaming reply and the scroll position follow at most once per frame.
    let frame = RwSignal::new(0u32);
    let frame_due = StoredValue::new(false);
    Effect::new(move |_| {
        chat.track();
        if frame_due.try_get_value() == Some(false) {
            frame_due.set_value(true);
            request_animation_frame(move || {
                frame_due.try_set_value(false);
                frame.try_update(|f| *f = f.wrapping_add(1));
            });
        }
    });
    let failure = Memo::new(move |_| chat.with(|c| c.failure.clone()));
    let greeting = Memo::new(move |_| {
        ctx.session
            .with(|s| s.as_ref().and_then(|s| s.class.greeting.clone()))
            .filter(|g| !g.trim().is_empty())
    });

    // Limits: a refusal's wait counts down and the minute's "few left" line lasts until the
    // minute's allowance is whole again, both read against `tick`, a clock that moves once a
    // second while the chat is shown.
    let tick = RwSignal::new(0u32);
    let now = move || {
        tick.track();
        js_sys::Date::now() as u64
    };
    if let Ok(h) = set_interval_with_handle(
        move || {
            let at = js_sys::Date::now() as u64;
            chat.try_maybe_update(|c| (c.wait_over(at), ()));
            tick.try_update(|n| *n = n.wrapping_add(1));
        },
        Duration::from_secs(1),
    ) {
        on_cleanup(move || h.clear());
    }
    let waiting = move || {
        let at = now();
        chat.with(|c| c.waiting(at))
    };

    let focus_input = move || {
        if let Some(el) = input_ref.get_untracked() {
            let _ = el.focus();
        }
    };
    Effect::new(move |_| {
        if let Some(el) = input_ref.get() {
            let _ = el.focus();
        }
    });
    Effect::new(move |_| {
        shape.with(|_| ()); // `track()` alone would not compute the memo
        frame.track();
        if stick.get_value()
            && let Some(el) = list_ref.get_untracked()
        {
            el.set_scroll_top(el.scroll_height());
        }
    });
    let on_scroll = move |_| {
        if let Some(el) = list_ref.get_untracked() {
            stick.set_value(el.scroll_height() - el.scroll_top() - el.client_height() < 48);
        }
    };

    // Nothing is sent while a reply streams or a limit's wait runs.
    let blocked = move || {
        streaming.get_untracked() || chat.with_untracked(|c| c.waiting(js_sys::Date::now() as u64))
    };
    let send = move || {
        if blocked() {
            return;
        }
        stick.set_value(true);
        if ctx.send(&draft.get_untracked()) {
            draft.set(String::new());
        }
        focus_input();
    };
    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        send();
    };
    let on_keydown = move |ev: KeyboardEvent| {
        // Enter sends; Shift+Enter is a newline; Enter that confirms an IME
        // composition (Chinese input) is neither.
        if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() && ev.key_code() != 229 {
            ev.prevent_default();
            send();
        }
    };
    let stop = move |_| {
        ctx.stop();
        focus_input();
    };
    let retry = move |_| {
        stick.set_value(true);
        ctx.retry();
        focus_input();
    };

    // A starter is sent as if typed.
    let start = move |text: &str| {
        if !blocked() {
            stick.set_value(true);
            ctx.send(text);
        }
    };
    // Messages only change by whole turns (the streaming reply is rendered separately),
    // so the list is simply rebuilt when their count or the conversation changes. An empty
    // conversation shows the class's starters instead.
    let rows = move || {
        shape.with(|_| ()); // `track()` alone would not compute the memo
        chat.with_untracked(|c| {
            if c.conversation.messages.is_empty() {
                let starters = ctx
                    .session
                    .with_untracked(|s| s.as_ref().map(|s| s.class.starters.clone()));
                return starters
                    .unwrap_or_default()
                    .into_iter()
                    .map(|text| {
                        let label = text.clone();
                        view! {
                            <button type="button" class="cc-starter" data-testid="cc-starter"
                                on:click=move |_| start(&text)>{label}</button>
                        }
                        .into_any()
                    })
                    .collect();
            }
            c.conversation
                .messages
                .iter()
                .map(message_view)
                .collect::<Vec<_>>()
        })
    };

    view! {
        <div class="cc-chat" data-testid="cc-chat">
            // Not a live region (it would read the reply token by token): `Ctx::announce`
            // reads each reply once, complete.
            <div class="cc-messages" data-testid="cc-messages" node_ref=list_ref role="region"
                aria-label=t.conversation tabindex="0" on:scroll=on_scroll>
                // Before the first message, permanently, while the class keeps conversations.
                {super::visibility_notice(ctx, "cc-notice", "cc-notice")}
                {move || greeting.get().map(|g| assistant_bubble(&g))}
                {rows}
                {move || reply.get().map(|(_, empty)| {
                    if empty { typing(t) } else { streaming_bubble(chat, frame) }
                })}
            </div>
            // One status line: a reply held up on the way, a model starting up, the help
            // resources after a message flagged for safety (the school's lines, as sent;
            // the same markup, so they cost the wasm next to nothing), else few messages
            // left (quietly).
            {move || {
                let help = chat.with(|c| c.help.clone());
                let line = if ctx.held.get() {
                    Some(("cc-held", t.held_up.to_owned()))
                } else if ctx.starting.get() {
                    Some(("cc-starting", t.starting_up.to_owned()))
                } else if let Some(h) = help {
                    Some(("cc-help", format!("{}\n{h}", t.help)))
                } else {
                    let at = now();
                    chat.with(|c| c.few_left(at).filter(|_| !c.waiting(at)))
                        .map(|f| ("cc-limits-note", t.few_left(f)))
                };
                line.map(|(id, text)| view! {
                    <div class=id data-testid=id role="status">{text}</div>
                })
            }}
            {move || failure.get().map(|f| {
                let can_retry = f.error.retryable() && f.error.wait_until().is_none();
                view! {
                    <div class="cc-chat-error" data-testid="cc-chat-error" role="alert">
                        // The alert is read out when it appears; the countdown's ticks are not.
                        <span aria-live="off">{move || error_sentence(&f.error, t, now())}</span>
                        {can_retry.then(|| view! {
                            <button type="button" data-testid="cc-retry" on:click=retry>{t.retry}</button>
                        })}
                    </div>
                }
            })}
            <form class="cc-composer" on:submit=on_submit>
                <label for="cc-input" class="cc-sr">{t.message}</label>
                <textarea id="cc-input" data-testid="cc-input" node_ref=input_ref rows="2"
                    placeholder=t.placeholder prop:value=move || draft.get()
                    on:input=move |ev| draft.set(event_target_value(&ev)) on:keydown=on_keydown>
                </textarea>
                <Show when=move || streaming.get() fallback=move || view! {
                    <button type="submit" class="cc-primary cc-send" data-testid="cc-send"
                        disabled=waiting>{t.send}</button>
                }>
                    <button type="button" class="cc-stop" data-testid="cc-stop" on:click=stop>{t.stop}</button>
                </Show>
            </form>
        </div>
    }
}
