//! Assembles the HTTP server from its parts (the HTTP layer and both
//! faces); used by `main` and by the tests, so both run exactly the same
//! application. Nothing imports this module but they: the faces depend on
//! [`crate::http`], never on each other or on what assembles them.

use crate::api;
use crate::http::{AppState, MAX_BODY_BYTES};
use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use std::net::TcpListener;
use tracing_actix_web::TracingLogger;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

/// The HTTP server, listening on `listener` (port 0 in tests).
pub fn build_server(
    state: AppState,
    listener: TcpListener,
    workers: Option<usize>,
) -> std::io::Result<Server> {
    crate::observability::handle();
    // Every blocking task runs under one of the pool's permits, so more
    // blocking threads than permits only add runnable threads: on two cores
    // they cost context switches and long queueing tails
    // (docs/performance.md). A worker may hold every permit.
    let workers = workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .max(1);
    let blocking_per_worker = usize::try_from(
        state.pool.max_size() + state.reads.as_ref().map_or(0, |r| r.pool.max_size()),
    )
    .unwrap_or(1);
    let state = web::Data::new(state);
    let mut server = HttpServer::new(move || {
        let (app, _) = App::new()
            .into_utoipa_app()
            .configure(api::configure)
            .split_for_parts();
        // The UI reads the served document (the annotations' plus the field
        // rules), which a route of its own answers.
        app.route("/api/openapi.json", web::get().to(api::openapi::serve))
            .service(
                SwaggerUi::new("/docs/{_:.*}")
                    .config(utoipa_swagger_ui::Config::from("/api/openapi.json")),
            )
            .service(web::redirect("/docs", "/docs/"))
            .configure(crate::web::configure)
            .wrap(actix_web::middleware::from_fn(crate::web::docs_headers))
            .wrap(actix_web::middleware::from_fn(crate::observability::track))
            .wrap(TracingLogger::default())
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .app_data(api::extract::path_config())
            .default_service(web::to(api::not_found))
    });
    server = server
        .workers(workers)
        .worker_max_blocking_threads(blocking_per_worker);
    Ok(server.listen(listener)?.run())
}
