//! The liquidity graph: (chain, token) nodes joined by pool swaps and cross-chain fills.

use std::collections::BTreeMap;

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

use crate::error::{PlanError, Result};
use crate::ids::Asset;
use crate::snapshot::LiquiditySnapshot;

/// An edge of the liquidity graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edge {
    /// A swap through `snapshot.pools[pool]`, from token0 to token1 when `zero_for_one`.
    Swap {
        /// Index into [`LiquiditySnapshot::pools`].
        pool: usize,
        /// Direction.
        zero_for_one: bool,
    },
    /// A fill: the user's token escrowed on one chain, the same asset (same symbol) delivered from
    /// solver inventory on another chain, or on the same chain. Capacity is the inventory.
    Fill,
}

/// The liquidity graph built over one snapshot. Build it once per snapshot and plan many intents
/// over it: building is linear in pools and tokens, planning touches only the subgraph an intent
/// can reach.
#[derive(Clone, Debug)]
pub struct LiquidityGraph {
    snapshot: LiquiditySnapshot,
    graph: DiGraph<Asset, Edge>,
    nodes: BTreeMap<Asset, NodeIndex>,
}

impl LiquidityGraph {
    /// Validates the snapshot and builds its graph: a node per known token, two swap edges per
    /// pool, and a fill edge from every token to every same-symbol token (on any chain, itself
    /// included) of which the solver holds inventory.
    pub fn new(snapshot: LiquiditySnapshot) -> Result<Self> {
        snapshot.validate()?;
        let mut graph = DiGraph::with_capacity(snapshot.tokens.len(), snapshot.pools.len() * 2);
        let mut nodes = BTreeMap::new();
        for asset in snapshot.tokens.keys() {
            nodes.insert(*asset, graph.add_node(*asset));
        }
        let node = |nodes: &BTreeMap<Asset, NodeIndex>, a: Asset| {
            nodes
                .get(&a)
                .copied()
                .ok_or(PlanError::UnknownToken { asset: a })
        };
        for (i, p) in snapshot.pools.iter().enumerate() {
            let a = node(&nodes, Asset::new(p.chain, p.token0))?;
            let b = node(&nodes, Asset::new(p.chain, p.token1))?;
            graph.add_edge(
                a,
                b,
                Edge::Swap {
                    pool: i,
                    zero_for_one: true,
                },
            );
            graph.add_edge(
                b,
                a,
                Edge::Swap {
                    pool: i,
                    zero_for_one: false,
                },
            );
        }
        let mut by_symbol: BTreeMap<&str, Vec<Asset>> = BTreeMap::new();
        for (asset, info) in &snapshot.tokens {
            by_symbol
                .entry(info.symbol.as_str())
                .or_default()
                .push(*asset);
        }
        for group in by_symbol.values() {
            for to in group
                .iter()
                .filter(|a| !snapshot.inventory_of(**a).is_zero())
            {
                for from in group {
                    graph.add_edge(node(&nodes, *from)?, node(&nodes, *to)?, Edge::Fill);
                }
            }
        }
        Ok(Self {
            snapshot,
            graph,
            nodes,
        })
    }

    /// The snapshot this graph was built from.
    pub fn snapshot(&self) -> &LiquiditySnapshot {
        &self.snapshot
    }

    /// The node of `asset`, if the snapshot knows it.
    pub(crate) fn node(&self, asset: Asset) -> Option<NodeIndex> {
        self.nodes.get(&asset).copied()
    }

    /// The asset at `node`.
    pub(crate) fn asset(&self, node: NodeIndex) -> Asset {
        self.graph[node]
    }

    /// Outgoing edges of `node`: (target, edge), in a fixed order (newest first), so searches are
    /// deterministic.
    pub(crate) fn edges(&self, node: NodeIndex) -> impl Iterator<Item = (NodeIndex, Edge)> + '_ {
        self.graph.edges(node).map(|e| (e.target(), *e.weight()))
    }

    /// Node and edge counts.
    pub fn size(&self) -> (usize, usize) {
        (self.graph.node_count(), self.graph.edge_count())
    }
}
