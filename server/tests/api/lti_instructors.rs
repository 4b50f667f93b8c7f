//! An instructor's LTI launch makes them a member of the class (a teacher account keyed by
//! the LMS identity's digest, no email stored), with a class-scoped dashboard through a
//! single-use hand-off; a teaching assistant gets the read-only role; a learner gets chat
//! only. Also the launch inside an iframe by LTI Platform Storage instead of the cookie.

use crate::admin::{PASSWORD, set_cookie};
use crate::helpers::*;
use crate::lti::*;
use crate::lti_platform::*;

const TA: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant";

async fn tool_with_dashboard() -> Tool {
    tool_with(Opts::default().with(|s| s.admin = admin_password(PASSWORD))).await
}

/// The member whose account was made for the LMS user `sub`.
fn member_for<'a>(
    t: &Tool,
    members: &'a [classchat_server::store::teachers::MemberRecord],
    sub: &str,
) -> &'a classchat_server::store::teachers::MemberRecord {
    let digest = t.app.state.lti.user_digest(t.platform.issuer(), sub);
    members
        .iter()
        .find(|m| m.email == format!("lti-{}@lti.invalid", &digest[..32]))
        .unwrap_or_else(|| panic!("no member for {sub}: {members:?}"))
}

/// The class a Deep Linking by `teacher-1` created for the course.
async fn bound_class(t: &Tool) -> String {
    let jwt = deep_link_as(t, "teacher-1", "new").await;
    verify_response(t, &jwt).await[format!("{DL}content_items")][0]["custom"]["classchat_class"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A resource-link launch as `sub` with `roles`, through the cookie; status and page.
async fn launch_as(t: &Tool, sub: &str, roles: &[&str]) -> (u16, String) {
    let l = login(t).await;
    let claims = t.platform.claims(&t.launch, &l.nonce, sub, roles);
    post_launch(t, &l, &platform_key().sign(Some("p1"), &claims)).await
}

fn handoff_ticket(page: &str) -> Option<String> {
    let form = &page[page.find("action=\"/lti/dashboard\"")?..];
    Some(unescape(between(form, "name=\"ticket\" value=\"", "\"")?))
}

async fn hand_off(t: &Tool, ticket: &str) -> reqwest::Response {
    t.app
        .client
        .post(format!("{}/lti/dashboard", t.app.address))
        .form(&[("ticket", ticket)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_instructor_launch_makes_a_member_and_hands_over_a_class_scoped_dashboard() {
    let t = tool_with_dashboard().await;
    let class_id = bound_class(&t).await;
    let (status, page) = launch_as(&t, "teacher-2", &[INSTRUCTOR]).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("data-role=\"instructor\""), "{page}");
    // The widget session still comes with it: an instructor may chat too.
    assert_eq!(session_of(&page).class.id, class_id);

    let members = t.app.state.store.members(&class_id).await.unwrap();
    assert_eq!(members.len(), 2, "{members:?}");
    // The instructor who made the class by Deep Linking owns it; one who launches edits it.
    assert_eq!(member_for(&t, &members, "teacher-1").role, "owner");
    let m = member_for(&t, &members, "teacher-2").clone();
    assert_eq!(m.role, "co_teacher");
    assert_eq!(m.name, "Mei Lin");
    // No email, sub or SIS id is stored: the account's email is a placeholder.
    assert!(m.email.ends_with("@lti.invalid"), "{}", m.email);
    for leaked in ["mei.lin", "teacher-2", "SIS-998877"] {
        assert!(!m.email.contains(leaked), "{}", m.email);
    }

    // The hand-off: a new top-level window signs in as that teacher and lands on the class.
    let ticket = handoff_ticket(&page).expect("a dashboard hand-off form");
    assert!(page.contains("target=\"_blank\""));
    let r = hand_off(&t, &ticket).await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        format!("/admin/classes/{class_id}/settings").as_str()
    );
    let raw = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("classchat_admin="))
        .unwrap();
    assert!(
        raw.contains("SameSite=Strict") && raw.contains("HttpOnly"),
        "{raw}"
    );
    let cookie = set_cookie(&r, "classchat_admin").unwrap();
    assert!(cookie.starts_with(&format!("classchat_admin=t.{}.", m.teacher_id)));
    let get = |path: String| {
        let t = &t;
        let cookie = cookie.clone();
        async move {
            t.app
                .client
                .get(format!("{}{path}", t.app.address))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
        }
    };
    let r = get(format!("/admin/classes/{class_id}/settings")).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Biology helper"));
    // Class-scoped: the configuration's class-1 is not theirs.
    let list = get("/admin/classes".into()).await.text().await.unwrap();
    assert!(list.contains("Biology helper"), "{list}");
    assert!(!list.contains("/admin/classes/class-1\""), "{list}");
    assert_ne!(
        get("/admin/classes/class-1/settings".into()).await.status(),
        200
    );
    // Not an administrator: the administrator's pages stay closed.
    assert_ne!(get("/admin/lti".into()).await.status(), 200);

    // Single use, on any replica: the same ticket again signs nobody in.
    let again = hand_off(&t, &ticket).await;
    assert_eq!(again.status(), 410);
    assert!(set_cookie(&again, "classchat_admin").is_none());
    assert!(
        again
            .text()
            .await
            .unwrap()
            .contains("data-error=\"handoff_expired\"")
    );
    assert_eq!(hand_off(&t, "made-up").await.status(), 410);

    // A second launch: the same account, no second member, a role given later is kept.
    t.app
        .state
        .store
        .put_member(
            &class_id,
            &m.teacher_id,
            classchat_server::teachers::Role::Owner,
            classchat_server::store::teachers::Audit {
                actor: "test",
                address: None,
                now_ms: 1,
            },
        )
        .await
        .unwrap();
    let (_, page) = launch_as(&t, "teacher-2", &[INSTRUCTOR]).await;
    assert!(handoff_ticket(&page).is_some());
    let members = t.app.state.store.members(&class_id).await.unwrap();
    assert_eq!(members.len(), 2);
    let again = member_for(&t, &members, "teacher-2");
    assert_eq!(again.role, "owner");
    assert_eq!(again.teacher_id, m.teacher_id);
}

#[tokio::test]
async fn a_teaching_assistant_reads_and_a_learner_gets_chat_only() {
    let t = tool_with_dashboard().await;
    let class_id = bound_class(&t).await;
    let (status, page) = launch_as(&t, "ta-1", &[TA]).await;
    assert_eq!(status, 200, "{page}");
    let members = t.app.state.store.members(&class_id).await.unwrap();
    assert_eq!(members.len(), 2);
    assert_eq!(member_for(&t, &members, "ta-1").role, "assistant");
    assert!(handoff_ticket(&page).is_some());

    let (status, page) = launch_as(&t, "learner-9", &[LEARNER]).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("data-role=\"learner\""));
    assert!(handoff_ticket(&page).is_none(), "{page}");
    assert_eq!(t.app.state.store.members(&class_id).await.unwrap().len(), 2);
    assert_eq!(counts(&t).await.3, 2, "teacher-1 and the assistant only");
}

#[tokio::test]
async fn without_a_dashboard_cookie_the_instructor_is_a_member_but_gets_no_hand_off() {
    // The dashboard off: the membership is recorded, no sign-in is offered.
    let t = tool().await;
    let class_id = bound_class(&t).await;
    let (_, page) = launch_as(&t, "teacher-2", &[INSTRUCTOR]).await;
    assert!(page.contains("data-role=\"instructor\""));
    assert!(handoff_ticket(&page).is_none());
    let members = t.app.state.store.members(&class_id).await.unwrap();
    assert_eq!(member_for(&t, &members, "teacher-2").role, "co_teacher");
}

/// A login that names a Platform Storage frame, and the auth endpoint's answer.
async fn storage_login(t: &Tool) -> (reqwest::Response, String) {
    let r = t
        .app
        .client
        .get(format!("{}/lti/login", t.app.address))
        .query(&[
            ("iss", t.platform.issuer()),
            ("login_hint", LOGIN_HINT),
            ("target_link_uri", t.launch.as_str()),
            ("lti_message_hint", MESSAGE_HINT),
            ("client_id", CLIENT_ID),
            ("lti_deployment_id", DEPLOYMENT),
            ("lti_storage_target", "post_message_forwarding"),
        ])
        .send()
        .await
        .unwrap();
    let html_status = r.status();
    assert_eq!(html_status, 200);
    let page = r.text().await.unwrap();
    let next = unescape(between(&page, "data-next=\"", "\"").unwrap());
    (t.app.client.get(&next).send().await.unwrap(), page)
}

#[tokio::test]
async fn platform_storage_keeps_the_state_where_the_cookie_cannot() {
    let t = tool().await;
    bound_class(&t).await;
    let (auth, login_page) = storage_login(&t).await;
    // The login page puts state and nonce into the named frame, for the platform's origin.
    assert!(login_page.contains("data-lti-storage=\"post_message_forwarding\""));
    assert!(login_page.contains(&format!("data-lti-origin=\"{}\"", t.platform.url)));
    assert!(login_page.contains("src=\"/lti/launch.js\""));
    let html = auth.text().await.unwrap();
    let state = between(&html, "name=state value=\"", "\"").unwrap();
    let nonce = between(&html, "data-nonce=\"", "\"").unwrap();
    assert!(login_page.contains(&format!("data-lti-put-state=\"{state}\"")));
    assert!(login_page.contains(&format!("data-lti-put-nonce=\"{nonce}\"")));
    let id_token = between(&html, "name=id_token value=\"", "\"").unwrap();

    // No cookie, the storage frame named: the launch is checked on the server and its
    // page holds the session back until the page has read the state from the platform.
    let r = t
        .app
        .client
        .post(format!("{}/lti/launch", t.app.address))
        .form(&[
            ("id_token", id_token),
            ("state", state),
            ("lti_storage_target", "post_message_forwarding"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(
        page.contains(&format!("data-lti-get-state=\"{state}\"")),
        "{page}"
    );
    assert!(page.contains(&format!("data-lti-get-nonce=\"{nonce}\"")));
    assert!(page.contains("<div id=\"cc-checked\" hidden><main data-role=\"learner\""));
    assert!(page.contains("data-error=\"storage_unavailable\" hidden"));
    assert!(page.contains("新視窗"));
    // The state was spent: a replay is refused like any other.
    let again = t
        .app
        .client
        .post(format!("{}/lti/launch", t.app.address))
        .form(&[
            ("id_token", id_token),
            ("state", state),
            ("lti_storage_target", "post_message_forwarding"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 401);
    assert!(
        again
            .text()
            .await
            .unwrap()
            .contains("data-error=\"state_unknown\"")
    );

    // Neither cookie nor storage: the "open in a new window" page, state kept.
    let l = login(&t).await;
    let (status, page) = post_launch_to(&t.app, &l.id_token, &l.state, None).await;
    assert_eq!((status, error_code(&page)), (401, "cookie_blocked"));
    // That login still finishes in a browser that kept its cookie.
    let (status, _) = post_launch_to(&t.app, &l.id_token, &l.state, Some(&l.cookie)).await;
    assert_eq!(status, 200);
    let js = t.app.get("/lti/launch.js").await.text().await.unwrap();
    for needle in [
        "lti.put_data",
        "lti.get_data",
        "e.origin !== d.ltiOrigin",
        "org.imsglobal.lti.close",
    ] {
        assert!(js.contains(needle), "{needle}");
    }
}

#[tokio::test]
async fn a_storage_target_that_is_no_frame_name_falls_back_to_the_redirect() {
    let t = tool().await;
    let r = t
        .app
        .client
        .get(format!("{}/lti/login", t.app.address))
        .query(&[
            ("iss", t.platform.issuer()),
            ("login_hint", LOGIN_HINT),
            ("target_link_uri", t.launch.as_str()),
            ("lti_message_hint", MESSAGE_HINT),
            ("client_id", CLIENT_ID),
            ("lti_storage_target", "\"><script>"),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection());
}
