//! Why a login, launch or Deep Linking choice was refused: one variant per check, each with
//! its HTTP status, a stable code (the error page carries it as `data-error`) and a sentence
//! in English and Traditional Chinese. Texts name no token, nonce or state; attacker-chosen
//! values are shortened ([`crate::jwks::clip`]) and only reach the log.

/// A refused LTI request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaunchError {
    #[error("login without {0}")]
    MissingLoginParam(&'static str),
    #[error("no registered platform for this issuer and client_id")]
    UnknownPlatform,
    #[error("several registrations for this issuer and no client_id")]
    AmbiguousClient,
    #[error("target_link_uri is not this tool")]
    TargetNotOurs,
    #[error("launch without id_token")]
    MissingIdToken,
    #[error("launch without state")]
    MissingState,
    #[error("no state cookie: the browser blocked it")]
    CookieBlocked,
    #[error("the state does not match this browser's")]
    StateMismatch,
    #[error("unknown, used or expired state")]
    StateUnknown,
    #[error("malformed id_token")]
    Malformed,
    #[error("id_token algorithm {0:?} is not RS256")]
    WrongAlgorithm(String),
    #[error("id_token header has no kid")]
    NoKid,
    #[error("id_token signed with unknown key {0:?}")]
    UnknownKid(String),
    #[error("platform keys unreachable: {0}")]
    KeysUnreachable(String),
    #[error("id_token signature does not verify")]
    BadSignature,
    #[error("id_token issued by {0:?}")]
    WrongIssuer(String),
    #[error("id_token audience lacks the client_id")]
    WrongAudience,
    #[error("id_token with several audiences and no azp")]
    AzpMissing,
    #[error("id_token azp is not the client_id")]
    WrongAzp,
    #[error("id_token expired")]
    Expired,
    #[error("id_token issued in the future")]
    IssuedInFuture,
    #[error("id_token issued too long ago")]
    IssuedTooLongAgo,
    #[error("id_token without {0}")]
    MissingClaim(&'static str),
    #[error("nonce is not the one issued for this login (replayed?)")]
    NonceMismatch,
    #[error("no message_type")]
    MissingMessageType,
    #[error("message_type {0:?} is not supported")]
    WrongMessageType(String),
    #[error("LTI version {0:?} is not 1.3.0")]
    WrongVersion(String),
    #[error("deployment_id differs from the login's")]
    DeploymentMismatch,
    #[error("deployment_id is not registered")]
    UnregisteredDeployment,
    #[error("target_link_uri differs from the login's")]
    TargetLinkMismatch,
    #[error("no resource_link id")]
    MissingResourceLinkId,
    #[error("no sub (anonymous launch)")]
    MissingSub,
    #[error("no roles claim")]
    MissingRoles,
    #[error("launch outside a course (no context)")]
    NoContext,
    #[error("this course is not bound to a class")]
    NotBound,
    #[error("the bound class is disabled, paused or gone")]
    ClassUnavailable,
    #[error("deep linking by someone who is not an instructor")]
    NotInstructor,
    #[error("the platform does not accept ltiResourceLink items")]
    NoResourceLinkAccepted,
    #[error("the class choice form is expired or altered")]
    BadChoice,
    #[error("the dashboard hand-off is unknown, used or expired")]
    HandoffExpired,
    #[error("the dashboard does not sign in teachers with its own cookie")]
    DashboardUnavailable,
    #[error("the registration link is unknown, used or expired")]
    RegistrationTicket,
    #[error("registration without {0}")]
    RegistrationParam(&'static str),
    #[error("the platform's configuration could not be read: {0}")]
    RegistrationConfig(String),
    #[error("the platform's issuer does not prefix its configuration URL")]
    RegistrationIssuer,
    #[error("the platform refused the registration: {0}")]
    RegistrationRefused(String),
    #[error("this platform and client id are registered already")]
    RegistrationTaken,
    #[error("server error: {0}")]
    Internal(String),
}

impl LaunchError {
    pub fn status(&self) -> u16 {
        match self {
            Self::UnknownPlatform | Self::NotBound => 404,
            Self::HandoffExpired | Self::RegistrationTicket => 410,
            Self::DashboardUnavailable => 404,
            Self::RegistrationTaken => 409,
            Self::RegistrationConfig(_) | Self::RegistrationRefused(_) => 502,
            Self::NotInstructor => 403,
            Self::CookieBlocked | Self::StateMismatch | Self::StateUnknown => 401,
            Self::WrongAlgorithm(_)
            | Self::NoKid
            | Self::UnknownKid(_)
            | Self::BadSignature
            | Self::WrongIssuer(_)
            | Self::WrongAudience
            | Self::AzpMissing
            | Self::WrongAzp
            | Self::Expired
            | Self::IssuedInFuture
            | Self::IssuedTooLongAgo
            | Self::NonceMismatch => 401,
            Self::UnregisteredDeployment => 403,
            Self::ClassUnavailable => 409,
            Self::KeysUnreachable(_) => 502,
            Self::Internal(_) => 500,
            _ => 400,
        }
    }

    /// Stable name of the check that failed, on the page as `data-error`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingLoginParam(_) => "missing_login_param",
            Self::HandoffExpired => "handoff_expired",
            Self::DashboardUnavailable => "dashboard_unavailable",
            Self::RegistrationTicket => "registration_ticket",
            Self::RegistrationParam(_) => "registration_param",
            Self::RegistrationConfig(_) => "registration_config",
            Self::RegistrationIssuer => "registration_issuer",
            Self::RegistrationRefused(_) => "registration_refused",
            Self::RegistrationTaken => "registration_taken",
            Self::UnknownPlatform => "unknown_platform",
            Self::AmbiguousClient => "ambiguous_client",
            Self::TargetNotOurs => "target_not_ours",
            Self::MissingIdToken => "missing_id_token",
            Self::MissingState => "missing_state",
            Self::CookieBlocked => "cookie_blocked",
            Self::StateMismatch => "state_mismatch",
            Self::StateUnknown => "state_unknown",
            Self::Malformed => "malformed",
            Self::WrongAlgorithm(_) => "wrong_algorithm",
            Self::NoKid => "no_kid",
            Self::UnknownKid(_) => "unknown_kid",
            Self::KeysUnreachable(_) => "keys_unreachable",
            Self::BadSignature => "bad_signature",
            Self::WrongIssuer(_) => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::AzpMissing => "azp_missing",
            Self::WrongAzp => "wrong_azp",
            Self::Expired => "expired",
            Self::IssuedInFuture => "issued_in_future",
            Self::IssuedTooLongAgo => "issued_too_long_ago",
            Self::MissingClaim(_) => "missing_claim",
            Self::NonceMismatch => "nonce_mismatch",
            Self::MissingMessageType => "missing_message_type",
            Self::WrongMessageType(_) => "wrong_message_type",
            Self::WrongVersion(_) => "wrong_version",
            Self::DeploymentMismatch => "deployment_mismatch",
            Self::UnregisteredDeployment => "unregistered_deployment",
            Self::TargetLinkMismatch => "target_link_mismatch",
            Self::MissingResourceLinkId => "missing_resource_link_id",
            Self::MissingSub => "missing_sub",
            Self::MissingRoles => "missing_roles",
            Self::NoContext => "no_context",
            Self::NotBound => "not_bound",
            Self::ClassUnavailable => "class_unavailable",
            Self::NotInstructor => "not_instructor",
            Self::NoResourceLinkAccepted => "no_resource_link_accepted",
            Self::BadChoice => "bad_choice",
            Self::Internal(_) => "internal",
        }
    }

    /// The page's title and sentence, in English and in Traditional Chinese.
    pub fn texts(&self) -> [(&'static str, String); 2] {
        let (en_t, en, zh_t, zh): (&str, String, &str, String) = match self {
            Self::CookieBlocked => (
                "Open classchat in a new window",
                "Your browser did not keep classchat's sign-in cookie inside the course page, so this launch cannot be \
                 checked. Ask your teacher to set the tool to open in a new window, or open it in a new window and \
                 launch it again."
                    .into(),
                "請在新視窗開啟 classchat",
                "您的瀏覽器沒有在課程頁面中保留 classchat 的登入 Cookie，因此無法驗證這次啟動。請老師把工具設定為在新視窗開啟，\
                 或在新視窗中重新啟動。"
                    .into(),
            ),
            Self::StateMismatch | Self::StateUnknown | Self::MissingState => (
                "This launch has expired",
                "This launch does not belong to this browser or was already used. Go back to the course and open \
                 classchat again."
                    .into(),
                "這次啟動已失效",
                "這次啟動不屬於此瀏覽器，或已經使用過。請回到課程重新開啟 classchat。".into(),
            ),
            Self::NotBound => (
                "classchat is not set up for this course yet",
                "Your teacher has not chosen a class for this course. A teacher adds classchat from the course's \
                 activity or content picker (Deep Linking) and picks or creates the class there."
                    .into(),
                "此課程尚未設定 classchat",
                "老師尚未為此課程選擇班級。老師請從課程的活動或內容選擇器（Deep Linking）加入 classchat，並在其中選擇或建立班級。"
                    .into(),
            ),
            Self::HandoffExpired => (
                "Open the dashboard from the course again",
                "This link to the dashboard works once, for ten minutes. Go back to the course and open classchat \
                 again to get a new one."
                    .into(),
                "請從課程重新開啟管理頁面",
                "此管理頁面連結只能使用一次，有效十分鐘。請回到課程重新開啟 classchat 以取得新連結。".into(),
            ),
            Self::DashboardUnavailable => (
                "The dashboard does not take LMS sign-ins",
                "This classchat's dashboard is off or behind Cloudflare Access, so an LMS launch cannot sign you in \
                 to it. Ask the classchat administrator."
                    .into(),
                "管理頁面不接受 LMS 登入",
                "此 classchat 的管理頁面已關閉或由 Cloudflare Access 保護，LMS 啟動無法讓您登入。請洽 classchat 管理員。"
                    .into(),
            ),
            Self::RegistrationTicket => (
                "This registration link has expired",
                "A registration link works once, for an hour. Make a new one on classchat's LTI page (Dashboard › LTI) \
                 and paste it into the LMS."
                    .into(),
                "此註冊連結已失效",
                "註冊連結只能使用一次，有效一小時。請在 classchat 的 LTI 頁面（管理頁面 › LTI）產生新連結，再貼到 LMS。".into(),
            ),
            Self::RegistrationParam(_)
            | Self::RegistrationConfig(_)
            | Self::RegistrationIssuer
            | Self::RegistrationRefused(_)
            | Self::RegistrationTaken => (
                "classchat could not be registered",
                format!(
                    "The LMS's registration did not complete ({}): nothing was stored. Check the LMS's settings or \
                     register classchat manually with the values on classchat's LTI page.",
                    self.code()
                ),
                "無法註冊 classchat",
                format!(
                    "LMS 的註冊未完成（{}），未儲存任何資料。請檢查 LMS 的設定，或依 classchat LTI 頁面上的值手動註冊。",
                    self.code()
                ),
            ),
            Self::NoContext => (
                "Open classchat from inside a course",
                "This launch did not say which course it came from. Add classchat to a course and open it there.".into(),
                "請從課程中開啟 classchat",
                "這次啟動沒有說明來自哪個課程。請將 classchat 加入課程，並從課程中開啟。".into(),
            ),
            Self::ClassUnavailable => (
                "This class is not open",
                "The class this course uses is switched off or paused, or no longer exists. Ask your teacher.".into(),
                "此班級目前未開放",
                "此課程使用的班級已關閉、暫停或不存在。請詢問老師。".into(),
            ),
            Self::NotInstructor => (
                "Only teachers can add classchat",
                "Choosing a class for a course is for the course's instructors.".into(),
                "只有老師可以加入 classchat",
                "只有課程的授課教師可以為課程選擇班級。".into(),
            ),
            Self::UnknownPlatform | Self::AmbiguousClient | Self::UnregisteredDeployment => (
                "This LMS is not registered with classchat",
                format!(
                    "classchat does not know this platform or deployment ({}). The classchat administrator registers \
                     it on the dashboard's LTI page.",
                    self.code()
                ),
                "此 LMS 尚未在 classchat 註冊",
                format!(
                    "classchat 不認識此平台或部署（{}）。請 classchat 管理員在管理頁面的 LTI 頁面註冊。",
                    self.code()
                ),
            ),
            Self::KeysUnreachable(_) => (
                "The LMS could not be reached",
                "classchat could not fetch the LMS's signing keys to check this launch. Try again in a minute.".into(),
                "無法連線到 LMS",
                "classchat 無法取得 LMS 的簽章金鑰來驗證這次啟動。請一分鐘後再試。".into(),
            ),
            Self::BadChoice => (
                "This form has expired",
                "Go back to the course and add classchat again.".into(),
                "此表單已過期",
                "請回到課程重新加入 classchat。".into(),
            ),
            Self::Internal(_) => (
                "Something went wrong",
                "classchat could not finish this launch. Please try again.".into(),
                "發生錯誤",
                "classchat 無法完成這次啟動，請再試一次。".into(),
            ),
            Self::NoResourceLinkAccepted => (
                "The LMS cannot take a classchat link here",
                "This place in the LMS does not accept LTI resource links.".into(),
                "LMS 無法在此加入 classchat 連結",
                "LMS 的此位置不接受 LTI 資源連結。".into(),
            ),
            // Every check of the message itself: the platform (or someone posing as it)
            // sent something classchat must refuse; the check is named for its admin.
            other => (
                "This launch was refused",
                format!(
                    "The LMS's launch message did not pass classchat's checks ({}: {}). Nothing was stored. \
                     Tell the classchat administrator.",
                    other.code(),
                    public_reason(other)
                ),
                "這次啟動被拒絕",
                format!(
                    "LMS 傳來的啟動訊息未通過 classchat 的檢查（{}）。未儲存任何資料。請告知 classchat 管理員。",
                    other.code()
                ),
            ),
        };
        [(en_t, en), (zh_t, zh)]
    }
}

/// The English reason without attacker-chosen values (they go to the log only).
fn public_reason(e: &LaunchError) -> String {
    match e {
        LaunchError::WrongAlgorithm(_) => "the token is not signed with RS256".into(),
        LaunchError::UnknownKid(_) => "the token's key is not in the platform's keyset".into(),
        LaunchError::WrongIssuer(_) => "the token's issuer is not the registered one".into(),
        LaunchError::WrongMessageType(_) => "unsupported message type".into(),
        LaunchError::WrongVersion(_) => "the LTI version is not 1.3.0".into(),
        other => other.to_string(),
    }
}
