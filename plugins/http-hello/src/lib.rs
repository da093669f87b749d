//! http-hello: a plain `wasi:http/proxy` component that does not use
//! plinth-sdk. Every request gets 200 `text/plain` `Hello from plinth`, the
//! same body as `hello`'s `/`, so benchmarks compare like with like: under
//! Plinth (`world = "wasi-http"`) and under `wasmtime serve -Scli`.

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

const BODY: &[u8] = b"Hello from plinth";

struct HttpHello;

impl Guest for HttpHello {
    fn handle(_request: IncomingRequest, response_out: ResponseOutparam) {
        let headers = Fields::from_list(&[
            (
                "content-type".to_owned(),
                b"text/plain; charset=utf-8".to_vec(),
            ),
            (
                "content-length".to_owned(),
                BODY.len().to_string().into_bytes(),
            ),
        ])
        .expect("static headers are valid");
        let response = OutgoingResponse::new(headers);
        let body = response.body().expect("a new response has a body");
        ResponseOutparam::set(response_out, Ok(response));

        let out = body.write().expect("the body has one output stream");
        // 17 bytes fit any stream's first write; blocking_write_and_flush
        // waits for room and flushes in one call.
        out.blocking_write_and_flush(BODY).expect("write the body");
        drop(out);
        OutgoingBody::finish(body, None).expect("finish the body");
    }
}

wasip2::http::proxy::export!(HttpHello with_types_in wasip2);
