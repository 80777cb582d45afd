//! Names shown on one line (stores, products) refuse every control character, the line
//! and paragraph separators and invisible formatting characters, wherever they come in:
//! a product through the store API, a store through the internal API and through SignUp
//! behind the edge. A refused name is INVALID_ARGUMENT naming the field, and changes
//! nothing.

use pos_common::domain::UserId;
use pos_proto::v1::{
    self as pb, PosGrade, ProductCategory, user_service_client::UserServiceClient,
};
use tonic::Code;

use super::product_names;
use crate::support::{Engine, app::TestApp, assert_error, stack::TestStack, violated_fields};

crate::on_both_engines!(
    product_and_store_names_refuse_unprintable_characters,
    signup_refuses_a_store_name_with_unprintable_characters,
);

/// What an attacker got into names: NUL, BEL, ESC, vertical tab, form feed, NEL, the line
/// and paragraph separators, and a right-to-left override.
const UNPRINTABLE: [char; 9] = [
    '\0', '\u{7}', '\u{1b}', '\u{b}', '\u{c}', '\u{85}', '\u{2028}', '\u{2029}', '\u{202E}',
];

async fn product_and_store_names_refuse_unprintable_characters(engine: Engine) {
    let app = TestApp::start(engine).await;
    let (_, owner) = app.new_store(1, PosGrade::Bronze).await;
    let mut client = app.store(Some(&owner));
    for c in UNPRINTABLE {
        for name in [format!("Kim{c}chi"), format!("Kimchi{c}")] {
            let status = assert_error(
                client
                    .create_product(pb::CreateProductRequest {
                        name: name.clone(),
                        category: ProductCategory::SubMenu as i32,
                        price: 500,
                        base_stock: 10,
                    })
                    .await,
                Code::InvalidArgument,
                "INVALID_ARGUMENT",
            );
            assert_eq!(violated_fields(&status), ["name"], "{name:?}");
            let status = assert_error(
                app.internal_as("user")
                    .create_store_for_owner(pb::CreateStoreForOwnerRequest {
                        owner_user_id: 2,
                        store_name: name.clone(),
                        pos_grade: PosGrade::Bronze as i32,
                        settlement_day: 10,
                    })
                    .await,
                Code::InvalidArgument,
                "INVALID_ARGUMENT",
            );
            assert_eq!(violated_fields(&status), ["store_name"], "{name:?}");
        }
    }
    assert!(product_names(&app, &owner, true).await.is_empty());
    assert!(
        app.storage
            .store_of_owner(UserId::from_stored(2))
            .await
            .expect("read")
            .is_none()
    );
    // A joiner inside an emoji sequence is a printable name.
    app.new_product(
        &owner,
        "Family set 👨\u{200D}👩",
        ProductCategory::MainMenu,
        1,
        1,
    )
    .await;
    app.stop().await;
}

/// The case that reached PostgreSQL (which cannot store NUL) and came back as a retryable
/// UNAVAILABLE: refused by validation first, on either engine.
async fn signup_refuses_a_store_name_with_unprintable_characters(engine: Engine) {
    let stack = TestStack::start(engine).await;
    let mut users = UserServiceClient::new(stack.channel());
    for (i, c) in UNPRINTABLE.into_iter().enumerate() {
        let status = assert_error(
            users
                .sign_up(pb::SignUpRequest {
                    identity: Some(pb::sign_up_request::Identity::ProviderToken(
                        pb::ProviderToken {
                            provider: "dev".into(),
                            access_token: format!("owner{i}@example.com"),
                        },
                    )),
                    store_name: format!("Ca{c}fe"),
                    pos_grade: PosGrade::Bronze as i32,
                    settlement_day: 10,
                })
                .await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        );
        assert_eq!(violated_fields(&status), ["store_name"], "{c:?}");
    }
    stack.stop().await;
}
