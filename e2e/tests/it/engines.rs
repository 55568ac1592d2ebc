//! The suite's tests that run on each engine: `on_each_engine!(NAME)` after `fn NAME(engine:
//! Engine)` makes the tests `NAME::on_docker` and `NAME::on_swarm`, so the same deploy, scale,
//! rollback, config, logs and domains checks hold whichever engine the agent runs, and either
//! can be run alone (`-E 'test(/::on_swarm$/)'`). The body starts its platform with
//! [`Platform::start_on`](crate::platform::Platform::start_on); where the engines really differ
//! (a Swarm task is not a container the agent names), it matches on its `engine`.

/// The tests `NAME::on_docker` and `NAME::on_swarm` of `fn NAME(engine: Engine)`.
macro_rules! on_each_engine {
    ($name:ident) => {
        mod $name {
            #[test]
            fn on_docker() {
                super::$name($crate::platform::Engine::Docker)
            }

            #[test]
            fn on_swarm() {
                super::$name($crate::platform::Engine::Swarm)
            }
        }
    };
}
