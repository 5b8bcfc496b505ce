//! template.yaml gives each function exactly the environment variables its configuration reads:
//! none missing (the function would fail at cold start in AWS) and none extra (a variable no code
//! reads is a setting that silently does nothing).

use std::collections::{BTreeSet, HashMap};

use emulator::{provision, Template};

#[tokio::test]
async fn each_function_gets_exactly_the_variables_its_config_reads() {
    // Arrange
    let sdk = emulator::test_sdk_config();
    let template = Template::load(&emulator::template_path()).unwrap();
    let resources = provision(&sdk, &template, &emulator::unique_prefix(), &HashMap::new())
        .await
        .unwrap();

    for (id, function) in &resources.functions {
        // Act: build the function as Lambda would, from its template environment.
        let env = resources.function_env(id);
        let built = local_runner::functions::by_binary(
            &function.binary,
            &env,
            &resources.function_sdk(&sdk, id).unwrap(),
        );

        // Assert
        assert!(
            built.is_ok(),
            "{id} cannot start from its template environment"
        );
        let given: BTreeSet<&str> = function.environment.keys().map(String::as_str).collect();
        assert_eq!(
            env.names_read(),
            given,
            "{id}: the variables its config reads (left) differ from the template's (right)"
        );
    }
}
