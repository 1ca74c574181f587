//! The conformance suite against both adapters baton ships: the sim, and evm on two anvil nodes
//! started by each test (automine off, so blocks come when the suite mines them).

mod sim {
    use baton_adapters::conformance::SimWorld;

    baton_adapters::conformance_suite!(async { SimWorld::new(1_900_000_000) });
}

mod evm {
    use baton_adapters::conformance::DevnetWorld;

    baton_adapters::conformance_suite!(async {
        DevnetWorld::start()
            .await
            .expect("starting two anvil nodes")
    });
}
