//! Every role of the system, in start-up order (a role after the roles it calls). This
//! list drives `pos serve <role>` (a subcommand per role, with only that role's flags),
//! `pos up` (all of them in one process), `pos migrate` and the test harness: adding a
//! role is a new crate and one line here.

use std::marker::PhantomData;

use async_trait::async_trait;
use clap::{ArgMatches, Args, Command, FromArgMatches};
use pos_common::role::{Needs, Role, RoleContext, Served, StartError};

pub static ROLES: &[&dyn RegisteredRole] = &[
    &Registered::<pos_store::StoreRole>(PhantomData),
    &Registered::<pos_trade::TradeRole>(PhantomData),
    &Registered::<pos_settlement::SettlementRole>(PhantomData),
    &Registered::<pos_user::UserRole>(PhantomData),
    &Registered::<pos_edge::EdgeRole>(PhantomData),
];

/// The role called `name`.
pub fn role(name: &str) -> Option<&'static dyn RegisteredRole> {
    ROLES.iter().copied().find(|role| role.name() == name)
}

/// A [`Role`] behind an object-safe face, so the registry can be one list.
#[async_trait]
pub trait RegisteredRole: Sync {
    fn name(&self) -> &'static str;
    fn about(&self) -> &'static str;
    fn services(&self) -> &'static [&'static str];
    fn needs(&self) -> Needs;
    /// Adds the role's own flags to a command.
    fn own_flags(&self, command: Command) -> Command;
    /// Parses the role's own flags from `matches` and builds the role.
    async fn build(&self, matches: &ArgMatches, context: RoleContext)
    -> Result<Served, StartError>;
}

pub struct Registered<R>(PhantomData<fn() -> R>);

#[async_trait]
impl<R> RegisteredRole for Registered<R>
where
    R: Role,
    R::Args: Args + FromArgMatches,
{
    fn name(&self) -> &'static str {
        R::NAME
    }

    fn about(&self) -> &'static str {
        R::ABOUT
    }

    fn services(&self) -> &'static [&'static str] {
        R::SERVICES
    }

    fn needs(&self) -> Needs {
        R::NEEDS
    }

    fn own_flags(&self, command: Command) -> Command {
        R::Args::augment_args(command)
    }

    async fn build(
        &self,
        matches: &ArgMatches,
        context: RoleContext,
    ) -> Result<Served, StartError> {
        let args = R::Args::from_arg_matches(matches)?;
        R::build(args, context).await
    }
}
