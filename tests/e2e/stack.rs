use wa_verify_core::ErrorKind;

use crate::support::*;

#[tokio::test]
async fn request_then_verify_with_the_code_from_the_outbox() {
    let sb = sandbox(Default::default()).await;
    let c = client(client_config(sb.base_url().as_str()));
    let answer = c.request_code(request("1234567890")).await.unwrap();
    assert!(answer.success);
    assert_eq!(answer.attempts(), 1);
    assert_eq!(answer.fbtrace_id().map(str::len), Some(23));
    let code = sb.outbox().last_code("1234567890").unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let e = c.verify_code(verify("1234567890", wrong)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WrongCode);
    let ok = c.verify_code(verify("1234567890", &code)).await.unwrap();
    assert_eq!(ok.output().id.as_deref(), Some("1234567890"));
    sb.shutdown().await;
}
