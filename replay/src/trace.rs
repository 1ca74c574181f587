//! A reverted transaction's call trace (`debug_traceTransaction` with the call tracer), decoded
//! with the fixture contracts' ABIs: one line per call, indented by depth.

use std::collections::HashMap;
use std::sync::LazyLock;

use alloy::json_abi::JsonAbi;
use alloy::primitives::{B256, hex};
use alloy::providers::DynProvider;
use alloy::providers::ext::DebugApi;
use alloy::rpc::types::trace::geth::{CallConfig, CallFrame, GethDebugTracingOptions};

/// The fixture contracts' ABIs, to name the functions in call traces.
const ARTIFACTS: [&str; 6] = [
    include_str!("../../fixtures/contracts/artifacts/TestToken.json"),
    include_str!("../../fixtures/contracts/artifacts/Pool.json"),
    include_str!("../../fixtures/contracts/artifacts/OriginSettler.json"),
    include_str!("../../fixtures/contracts/artifacts/DestinationSettler.json"),
    include_str!("../../fixtures/contracts/artifacts/CallExecutor.json"),
    include_str!("../../fixtures/contracts/artifacts/Vault.json"),
];

/// `Contract.function(types)` by selector, from [`ARTIFACTS`].
static FUNCTIONS: LazyLock<HashMap<[u8; 4], String>> = LazyLock::new(|| {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Artifact {
        contract_name: String,
        abi: JsonAbi,
    }
    let mut names = HashMap::new();
    for artifact in ARTIFACTS {
        let Ok(a) = serde_json::from_str::<Artifact>(artifact) else {
            continue;
        };
        for f in a.abi.functions() {
            names
                .entry(f.selector().0)
                .or_insert_with(|| format!("{}.{}", a.contract_name, f.signature()));
        }
    }
    names
});

/// The call trace of `tx` on `fork`, when the node gives one.
pub(crate) async fn call_trace(fork: &DynProvider, tx: B256) -> Option<CallFrame> {
    let options = GethDebugTracingOptions::call_tracer(CallConfig::default());
    fork.debug_trace_transaction(tx, options)
        .await
        .ok()?
        .try_into_call_frame()
        .ok()
}

/// The revert reason of a call (`revertReason`, else the `Error(string)` in its output).
pub(crate) fn revert_reason(call: &CallFrame) -> Option<String> {
    if let Some(r) = &call.revert_reason {
        return Some(r.clone());
    }
    alloy::sol_types::decode_revert_reason(call.output.as_ref()?)
}

/// The call trace as lines: `CALL Pool.swap(…) to 0x… → reverted: reason`, indented by depth.
pub(crate) fn decode_trace(trace: &CallFrame) -> Vec<String> {
    let mut lines = Vec::new();
    walk(trace, 0, &mut lines);
    lines
}

fn walk(call: &CallFrame, depth: usize, lines: &mut Vec<String>) {
    let input = &call.input;
    let function = input
        .get(..4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .and_then(|sel| FUNCTIONS.get(&sel).cloned())
        .unwrap_or_else(|| {
            if input.is_empty() {
                "(transfer)".into()
            } else {
                format!("0x{}", hex::encode(&input[..input.len().min(4)]))
            }
        });
    let outcome = match (&call.error, revert_reason(call)) {
        (Some(_), Some(reason)) => format!(" → reverted: {reason}"),
        (Some(error), None) => format!(" → {error}"),
        _ => String::new(),
    };
    let to = call
        .to
        .map_or_else(|| "?".to_owned(), |a| format!("{a:#x}"));
    lines.push(format!(
        "{}{} {function} to {to}{outcome}",
        "  ".repeat(depth),
        if call.typ.is_empty() {
            "CALL"
        } else {
            &call.typ
        },
    ));
    for child in &call.calls {
        walk(child, depth + 1, lines);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reverted_swap_inside_a_call_is_named_and_indented() {
        let swap = FUNCTIONS
            .iter()
            .find(|(_, name)| name.starts_with("Pool.swap("))
            .map(|(sel, _)| *sel)
            .expect("the Pool artifact names swap");
        let inner = CallFrame {
            typ: "CALL".into(),
            input: [swap.as_slice(), &[0u8; 32]].concat().into(),
            error: Some("execution reverted".into()),
            revert_reason: Some("minOut".into()),
            ..CallFrame::default()
        };
        let outer = CallFrame {
            typ: "CALL".into(),
            input: vec![0xde, 0xad, 0xbe, 0xef, 1].into(),
            calls: vec![inner],
            ..CallFrame::default()
        };
        let lines = decode_trace(&outer);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("CALL 0xdeadbeef to ?"), "{lines:?}");
        assert!(lines[1].starts_with("  CALL Pool.swap("), "{lines:?}");
        assert!(lines[1].ends_with("→ reverted: minOut"), "{lines:?}");
    }
}
