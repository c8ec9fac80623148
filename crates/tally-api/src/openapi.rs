//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{ERROR_CODES, ErrorBody};
use crate::routes;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("tly_<64 hex>").build()));
        let codes: Vec<String> = ERROR_CODES.iter().map(|(c, s, m)| format!("- `{c}` ({s}): {m}")).collect();
        openapi.info.description = Some(format!(
            "Tally attributes a multi-tenant SaaS's AWS bill to its tenants, to the cent.\n\nEvery error is JSON `{{\"code\", \"message\"}}` with one of these codes:\n{}",
            codes.join("\n")
        ));
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Tally", version = env!("CARGO_PKG_VERSION")),
    paths(
        routes::costs,
        routes::tenants,
        routes::tenant,
        routes::burn_report,
        routes::savings,
        crate::charts::chart,
        routes::reconciliation,
        routes::jobs,
        routes::explanations,
        routes::post_revenue,
        routes::post_cash,
        routes::post_allocation,
        routes::export_monthly_csv,
        routes::export_monthly_parquet,
        routes::export_focus,
        crate::healthz,
        crate::readyz,
        crate::metrics_route,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Security),
    tags((name = "reports"), (name = "exports"), (name = "admin"), (name = "operations"))
)]
struct ApiDoc;

/// The document as JSON.
pub fn openapi_json() -> String {
    ApiDoc::openapi().to_pretty_json().expect("the OpenAPI document serialises")
}
