//! The OpenAPI 3.1 document of the API, generated from the handlers' annotations and the DTOs.

use utoipa::OpenApi;

use crate::auth::Role;
use crate::error::{Code, ErrorBody};
use crate::handlers::{intents, operator, quote, replay, system, webhooks};

#[derive(OpenApi)]
#[openapi(
    info(title = "baton", description = "baton's REST API v1: quote, sign, submit and follow intents; operate sagas and chains."),
    paths(
        quote::quote,
        intents::submit,
        intents::status,
        intents::events,
        operator::chains,
        operator::inventory,
        operator::sagas,
        operator::retry,
        replay::replay,
        operator::pause_chain,
        operator::resume_chain,
        operator::pause_all,
        operator::resume_all,
        operator::pauses,
        operator::actions,
        webhooks::create,
        webhooks::list,
        webhooks::show,
        webhooks::remove,
        webhooks::enable,
        webhooks::deliveries,
        webhooks::list_all,
        system::metrics,
        system::healthz,
        system::openapi,
    ),
    components(schemas(ErrorBody, Code, Role, crate::dto::webhook::WebhookPayload)),
    modifiers(&Security)
)]
/// The OpenAPI document of this API.
pub struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
