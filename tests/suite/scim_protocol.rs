//! The SCIM 2.0 server against RFC 7643/7644: discovery, CRUD, filters,
//! paging, attribute selection, ETags, errors, isolation, keys.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn discovery_documents_describe_the_server() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let spc = scim.get("/ServiceProviderConfig").await;
    assert_eq!(spc.status, StatusCode::OK);
    assert_eq!(spc.headers["content-type"], "application/scim+json");
    assert_eq!(spc.body["patch"]["supported"], true);
    assert_eq!(spc.body["bulk"]["supported"], false);
    assert_eq!(spc.body["filter"]["supported"], true);
    let schemas = scim.get("/Schemas").await;
    assert_eq!(schemas.body["totalResults"], 3);
    let user = scim.get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:User").await;
    assert_eq!(user.body["name"], "User");
    // A group's displayName is unique per connection (a duplicate is 409 uniqueness), and /Schemas says so.
    let group = scim.get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:Group").await;
    let display_name =
        group.body["attributes"].as_array().unwrap().iter().find(|a| a["name"] == "displayName").unwrap();
    assert_eq!(display_name["uniqueness"], "server", "{display_name}");
    let types = scim.get("/ResourceTypes").await;
    assert_eq!(types.body["totalResults"], 2);
    let missing = scim.get("/Schemas/urn:nope").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error");
}

#[tokio::test]
async fn create_returns_201_with_location_etag_and_meta() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let r = scim.post("/Users", user("alice@acme.com")).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let id = r.body["id"].as_str().unwrap();
    assert_eq!(r.headers["location"].to_str().unwrap(), format!("{}/Users/{id}", scim.base));
    assert_eq!(r.headers["etag"], "W/\"1\"");
    assert_eq!(r.body["meta"]["resourceType"], "User");
    assert_eq!(r.body["meta"]["version"], "W/\"1\"");
    assert_eq!(r.body["meta"]["location"], format!("{}/Users/{id}", scim.base));
    let got = scim.get(&format!("/Users/{id}")).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["userName"], "alice@acme.com");
    assert!(got.body.get("password").is_none());
    // The create's answer (written with the stored text) is the document a read answers.
    assert_eq!(r.body, got.body);
}

#[tokio::test]
async fn user_name_is_unique_per_connection_case_insensitively() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    scim.create_user(user("Alice@Acme.com")).await;
    let r = scim.post("/Users", user("alice@acme.COM")).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["scimType"], "uniqueness");
    assert_eq!(r.body["status"], "409");
    // Another connection may hold the same userName.
    let other = app.scim().await;
    other.create_user(user("alice@acme.com")).await;
}

#[tokio::test]
async fn password_is_accepted_and_never_stored_or_returned() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let mut body = user("pw@acme.com");
    body["password"] = json!("Sup3rSecret!");
    let id = scim.create_user(body).await;
    let got = scim.get(&format!("/Users/{id}")).await;
    assert!(!got.body.to_string().contains("Sup3rSecret"));
    let conn = scim.connection_id.clone();
    let row = app.state.store.read_blocking(move |c| tandem_store::scim::users::get(c, &conn, &id)).unwrap().unwrap();
    assert!(!row.resource.contains("Sup3rSecret"));
}

#[tokio::test]
async fn filters_cover_the_rfc_grammar() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let mut a = user("alice@acme.com");
    a["externalId"] = json!("ext-A");
    a["title"] = json!("Engineer");
    a["emails"] = json!([{"value": "alice@acme.com", "type": "work", "primary": true}, {"value": "alice@home.example", "type": "home"}]);
    a["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] =
        json!({"department": "R&D", "employeeNumber": "701"});
    a["addresses"] = json!([{"type": "work", "locality": "Berlin", "country": "DE"}]);
    let a = scim.create_user(a).await;
    let mut b = user("bob@acme.com");
    b["name"] = json!({"givenName": "Bob", "familyName": "Builder"});
    b["active"] = json!(false);
    b["emails"] = json!([{"value": "bob@other.example", "type": "work"}]);
    let b = scim.create_user(b).await;
    let c = scim.create_user(user("carol@acme.com")).await;

    let cases: Vec<(&str, Vec<&String>)> = vec![
        ("userName eq \"ALICE@acme.com\"", vec![&a]),
        ("USERNAME EQ \"alice@acme.com\"", vec![&a]),
        ("userName sw \"b\"", vec![&b]),
        ("userName ew \"@acme.com\"", vec![&a, &b, &c]),
        ("userName co \"ROL\"", vec![&c]),
        ("userName ne \"alice@acme.com\"", vec![&b, &c]),
        ("externalId eq \"ext-A\"", vec![&a]),
        ("externalId eq \"EXT-A\"", vec![]),
        ("externalId pr", vec![&a]),
        ("not (externalId pr)", vec![&b, &c]),
        ("active eq false", vec![&b]),
        ("active eq true and userName sw \"c\"", vec![&c]),
        ("userName eq \"alice@acme.com\" or userName eq \"carol@acme.com\"", vec![&a, &c]),
        ("(userName sw \"a\" or userName sw \"b\") and active eq true", vec![&a]),
        ("name.familyName eq \"builder\"", vec![&b]),
        ("emails[type eq \"work\" and value co \"@acme.com\"]", vec![&a, &c]),
        ("emails[type eq \"home\"]", vec![&a]),
        ("emails co \"other.example\"", vec![&b]),
        ("emails.value ew \"home.example\"", vec![&a]),
        ("title pr", vec![&a]),
        // addresses has no `value`: present is any address, a comparison matches nothing.
        ("addresses pr", vec![&a]),
        ("addresses eq \"Berlin\"", vec![]),
        ("addresses[locality eq \"berlin\"]", vec![&a]),
        // A single-valued complex attribute in brackets is its one value.
        ("name[givenName eq \"bob\" and familyName sw \"Build\"]", vec![&b]),
        ("name[givenName eq \"bob\" and familyName sw \"Nope\"]", vec![]),
        ("addresses.country eq \"DE\"", vec![&a]),
        ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq \"r&d\"", vec![&a]),
        ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq \"701\"", vec![&a]),
        ("urn:ietf:params:scim:schemas:core:2.0:User:userName eq \"bob@acme.com\"", vec![&b]),
        ("meta.lastModified gt \"2000-01-01T00:00:00Z\"", vec![&a, &b, &c]),
        ("meta.created lt \"2000-01-01T00:00:00Z\"", vec![]),
        // A date alone, or no offset: UTC, as the rest of the server reads date-times.
        ("meta.created gt \"2000-01-01\"", vec![&a, &b, &c]),
        ("meta.lastModified lt \"2000-01-01T00:00:00\"", vec![]),
        ("meta.created lt \"9999-12-31t23:59:59.5+01:00\"", vec![&a, &b, &c]),
        ("meta.resourceType eq \"User\"", vec![&a, &b, &c]),
        // RFC 7644 §3.4.2.2's own example: the users with enterprise data.
        ("schemas eq \"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\"", vec![&a]),
        ("SCHEMAS eq \"URN:IETF:params:scim:schemas:core:2.0:User\"", vec![&a, &b, &c]),
        ("not (schemas eq \"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\")", vec![&b, &c]),
        ("schemas co \"enterprise\"", vec![&a]),
        ("id eq \"nope\"", vec![]),
    ];
    assert_user_filters(&scim, cases).await;
}

/// A delta sync reads `meta.lastModified` off the resources it got and asks
/// for what changed after it: the value as shown (milliseconds) finds its
/// resource with `eq`, `ge` and `le`, and not with `gt` or `lt`, although
/// it is stored to the microsecond.
#[tokio::test]
async fn last_modified_as_shown_finds_its_resource_again() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let id = scim.create_user(user("delta@acme.com")).await;
    let shown = scim.get(&format!("/Users/{id}")).await.body["meta"]["lastModified"].as_str().unwrap().to_string();
    let created = scim.get(&format!("/Users/{id}")).await.body["meta"]["created"].as_str().unwrap().to_string();
    for (op, found) in [("eq", true), ("ge", true), ("le", true), ("gt", false), ("lt", false)] {
        for (attr, value) in [("meta.lastModified", &shown), ("meta.created", &created)] {
            let got = scim.filter_ids("Users", &format!("{attr} {op} \"{value}\"")).await;
            assert_eq!(got == vec![id.clone()], found, "{attr} {op} {value}: {got:?}");
        }
    }
    // gt the millisecond before, lt the one after: found.
    let t = chrono::DateTime::parse_from_rfc3339(&shown).unwrap();
    let (before, after) = (t - chrono::Duration::milliseconds(1), t + chrono::Duration::milliseconds(1));
    let fmt = |t: chrono::DateTime<chrono::FixedOffset>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    assert_eq!(scim.filter_ids("Users", &format!("meta.lastModified gt \"{}\"", fmt(before))).await, vec![id.clone()]);
    assert_eq!(scim.filter_ids("Users", &format!("meta.lastModified lt \"{}\"", fmt(after))).await, vec![id.clone()]);
}

/// RFC 7644 §3.4.2.2: ordering a boolean is an `invalidFilter`.
#[tokio::test]
async fn ordering_a_boolean_is_an_invalid_filter() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    scim.create_user(user("bool@acme.com")).await;
    for filter in ["active gt true", "active le false", "emails[primary ge true]"] {
        let r = scim
            .get(&format!(
                "/Users?filter={}",
                url::form_urlencoded::byte_serialize(filter.as_bytes()).collect::<String>()
            ))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{filter}: {}", r.body);
        assert_eq!(r.body["scimType"], "invalidFilter", "{filter}: {}", r.body);
        assert!(r.body["detail"].as_str().unwrap().contains("boolean"), "{filter}: {}", r.body);
    }
}

/// Each filter finds exactly the users listed (in any order).
async fn assert_user_filters(scim: &Scim, cases: Vec<(&str, Vec<&String>)>) {
    for (filter, expected) in cases {
        let mut want: Vec<String> = expected.into_iter().cloned().collect();
        want.sort();
        let mut got = scim.filter_ids("Users", filter).await;
        got.sort();
        assert_eq!(got, want, "filter {filter}");
    }
}

#[tokio::test]
async fn case_insensitive_filters_fold_letters_beyond_ascii() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let mut e = user("Émile@acme.com");
    e["displayName"] = json!("Émile Zola");
    e["name"] = json!({"givenName": "Émile", "familyName": "ØRSTED"});
    e["emails"] = json!([{"value": "Émile@Acme.com", "type": "work"}]);
    let e = scim.create_user(e).await;
    let mut o = user("odysseus@acme.com");
    o["displayName"] = json!("ΟΔΥΣΣΕΥΣ");
    let o = scim.create_user(o).await;
    let _plain = scim.create_user(user("emile@acme.com")).await;

    let cases: Vec<(&str, Vec<&String>)> = vec![
        // Exactly as stored: a match whatever the folding does.
        ("displayName eq \"Émile Zola\"", vec![&e]),
        ("displayName eq \"ΟΔΥΣΣΕΥΣ\"", vec![&o]),
        ("name.familyName eq \"ØRSTED\"", vec![&e]),
        // Other case, letters outside ASCII.
        ("displayName eq \"ÉMILE ZOLA\"", vec![&e]),
        ("displayName eq \"émile zola\"", vec![&e]),
        ("displayName sw \"éMILE\"", vec![&e]),
        ("displayName ew \"zOLA\"", vec![&e]),
        ("displayName co \"δυσσ\"", vec![&o]),
        ("name.familyName eq \"ørsted\"", vec![&e]),
        ("name.givenName sw \"ÉM\"", vec![&e]),
        ("emails.value eq \"émile@acme.com\"", vec![&e]),
        ("emails[value ew \"@ACME.COM\" and value sw \"ÉMILE\"]", vec![&e]),
        ("userName eq \"ÉMILE@ACME.COM\"", vec![&e]),
        // Folding is not accent-stripping.
        ("displayName sw \"Emile\"", vec![]),
        ("not (displayName eq \"émile zola\") and displayName pr", vec![&o]),
    ];
    assert_user_filters(&scim, cases).await;
}

#[tokio::test]
async fn bad_filters_are_400_invalid_filter_saying_what_is_wrong() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    for (filter, needle) in [
        ("userName eq", "after \"eq\""),
        ("userName equals \"x\"", "unknown operator"),
        ("userName eq \"unterminated", "unterminated"),
        ("shoeSize gt 3", "shoeSize"),
        ("((((((((((((((((((((((((((((((((((userName pr))))))))))))))))))))))))))))))))))", "deeper"),
        ("active eq \"maybe\"", "true or false"),
    ] {
        let r = scim
            .http
            .get(format!("{}/Users", scim.base))
            .query(&[("filter", filter)])
            .bearer_auth(&scim.key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{filter}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["scimType"], "invalidFilter", "{filter}: {body}");
        assert!(body["detail"].as_str().unwrap().contains(needle), "{filter}: {body}");
    }
    let long = format!("userName eq \"{}\"", "x".repeat(5000));
    let r = scim
        .http
        .get(format!("{}/Users", scim.base))
        .query(&[("filter", long)])
        .bearer_auth(&scim.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn paging_is_stable_with_integer_total_results() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(scim.create_user(user(&format!("u{i}@acme.com"))).await);
    }
    let mut seen = Vec::new();
    for start in [1, 4, 7] {
        let r = scim.get(&format!("/Users?startIndex={start}&count=3")).await;
        assert_eq!(r.body["totalResults"], 7);
        assert!(r.body["totalResults"].is_u64());
        assert_eq!(r.body["startIndex"], start);
        for u in r.body["Resources"].as_array().unwrap() {
            seen.push(u["id"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(seen, ids, "pages cover every user once, in creation order");
    let r = scim.get("/Users?count=0").await;
    assert_eq!(r.body["totalResults"], 7);
    assert_eq!(r.body["Resources"].as_array().map(Vec::len).unwrap_or(0), 0);
    let r = scim.get("/Users?startIndex=0&count=1").await;
    assert_eq!(r.body["startIndex"], 1);
    let r = scim.get("/Users?count=abc").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["scimType"], "invalidValue");
    // A count past 64 bits is the largest there is, answered with the maximum.
    let r = scim.get("/Users?count=99999999999999999999").await;
    assert_eq!((r.status, &r.body["itemsPerPage"]), (StatusCode::OK, &json!(7)), "{}", r.body);
    let r = scim.get("/Users?startIndex=99999999999999999999").await;
    assert_eq!((r.status, &r.body["itemsPerPage"]), (StatusCode::OK, &json!(0)), "{}", r.body);
}

#[tokio::test]
async fn post_search_matches_get_with_filter() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let id = scim.create_user(user("s@acme.com")).await;
    scim.create_user(user("t@acme.com")).await;
    let r = scim
        .post(
            "/Users/.search",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": "userName eq \"s@acme.com\"", "attributes": ["userName"], "startIndex": 1, "count": 10}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["totalResults"], 1);
    assert_eq!(r.body["Resources"][0]["id"], id);
    assert!(r.body["Resources"][0].get("emails").is_none());
    let root = scim.post("/.search", json!({"filter": "userName eq \"s@acme.com\""})).await;
    assert_eq!(root.status, StatusCode::OK, "{}", root.body);
    assert_eq!(root.body["totalResults"], 1);
    // An attribute neither resource type has is the filter's mistake, said so.
    let root = scim.post("/.search", json!({"filter": "usrName eq \"s@acme.com\""})).await;
    assert_eq!(
        (root.status, &root.body["scimType"]),
        (StatusCode::BAD_REQUEST, &json!("invalidFilter")),
        "{}",
        root.body
    );
}

#[tokio::test]
async fn attributes_and_excluded_attributes_shape_the_response() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let id = scim.create_user(user("shape@acme.com")).await;
    let r = scim.get(&format!("/Users/{id}?attributes=userName,name.givenName")).await;
    assert_eq!(r.body["id"], id);
    assert_eq!(r.body["userName"], "shape@acme.com");
    assert_eq!(r.body["name"]["givenName"], "Given");
    assert!(r.body["name"].get("familyName").is_none());
    assert!(r.body.get("emails").is_none());
    let r = scim.get(&format!("/Users/{id}?excludedAttributes=emails,name")).await;
    assert!(r.body.get("emails").is_none() && r.body.get("name").is_none());
    assert_eq!(r.body["userName"], "shape@acme.com");
}

#[tokio::test]
async fn put_and_patch_return_200_with_the_resource_and_a_new_etag() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let id = scim.create_user(user("v@acme.com")).await;
    let mut body = user("v@acme.com");
    body["title"] = json!("Boss");
    let r = scim.put(&format!("/Users/{id}"), body).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["title"], "Boss");
    assert_eq!(r.headers["etag"], "W/\"2\"");
    let r = scim
        .patch(&format!("/Users/{id}"), patch_op(json!([{"op": "replace", "path": "title", "value": "CEO"}])))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["title"], "CEO");
    assert_eq!(r.body["meta"]["version"], "W/\"3\"");
}

/// RFC 7644 §3.9: a POST's answer follows `attributes` / `excludedAttributes`
/// too; a malformed one is refused and nothing is created.
#[tokio::test]
async fn post_answers_follow_attributes_and_excluded_attributes() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let r = scim.post("/Users?attributes=userName", user("made@acme.com")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["userName"], "made@acme.com");
    assert!(r.body.get("emails").is_none() && r.body.get("name").is_none(), "{}", r.body);
    // Stored whole: only the answer was projected.
    assert_eq!(scim.get(&format!("/Users/{id}")).await.body["emails"][0]["value"], "made@acme.com");
    let r = scim
        .post("/Groups?excludedAttributes=members", json!({"displayName": "Made", "members": [{"value": id}]}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(r.body.get("members").is_none() && r.body["displayName"] == "Made", "{}", r.body);
    let gid = r.body["id"].as_str().unwrap();
    assert_eq!(scim.get(&format!("/Groups/{gid}")).await.body["members"][0]["value"], id.as_str());
    let r = scim.post("/Users?attributes=name.givenName.extra", user("never@acme.com")).await;
    assert_eq!((r.status, r.body["scimType"].as_str()), (StatusCode::BAD_REQUEST, Some("invalidPath")), "{}", r.body);
    assert!(scim.filter_ids("Users", "userName eq \"never@acme.com\"").await.is_empty());
}

#[tokio::test]
async fn put_and_patch_answers_follow_attributes_and_excluded_attributes() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let id = scim.create_user(user("proj@acme.com")).await;
    let r = scim
        .patch(
            &format!("/Users/{id}?attributes=userName"),
            patch_op(json!([{"op": "replace", "path": "title", "value": "T"}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["id"].as_str(), r.body["userName"].as_str()), (Some(id.as_str()), Some("proj@acme.com")));
    assert!(r.body.get("title").is_none() && r.body.get("emails").is_none(), "{}", r.body);
    let r = scim.put(&format!("/Users/{id}?excludedAttributes=emails"), user("proj@acme.com")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.get("emails").is_none() && r.body["name"]["givenName"] == "Given", "{}", r.body);
    let r =
        scim.patch(&format!("/Users/{id}"), patch_op(json!([{"op": "replace", "path": "title", "value": "U"}]))).await;
    assert_eq!((r.body["title"].as_str(), r.body["emails"][0]["value"].as_str()), (Some("U"), Some("proj@acme.com")));
    let gid = scim.post("/Groups", json!({"displayName": "P", "members": [{"value": id}]})).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let put = |query: &str| {
        let (path, scim) = (format!("/Groups/{gid}{query}"), &scim);
        let body = json!({"displayName": "P2", "members": [{"value": id}]});
        async move { scim.put(&path, body).await }
    };
    let r = put("?excludedAttributes=members").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.get("members").is_none() && r.body["displayName"] == "P2", "{}", r.body);
    assert_eq!(put("").await.body["members"][0]["value"], id.as_str());
    // A malformed list is refused before anything is written.
    let before = scim.get(&format!("/Users/{id}")).await.body;
    let r = scim
        .patch(
            &format!("/Users/{id}?attributes=name.givenName.extra"),
            patch_op(json!([{"op": "replace", "path": "title", "value": "Never"}])),
        )
        .await;
    assert_eq!((r.status, r.body["scimType"].as_str()), (StatusCode::BAD_REQUEST, Some("invalidPath")), "{}", r.body);
    let r = scim.put(&format!("/Users/{id}?excludedAttributes=name.givenName.extra"), user("other@acme.com")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(scim.get(&format!("/Users/{id}")).await.body, before);
    let group_before = scim.get(&format!("/Groups/{gid}")).await.body;
    let r = scim
        .patch(
            &format!("/Groups/{gid}?attributes=members.value.extra"),
            patch_op(json!([{"op": "replace", "path": "displayName", "value": "Never"}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(put("?attributes=members.value.extra").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(scim.get(&format!("/Groups/{gid}")).await.body, group_before);
    // A list is checked whether or not anything matches, and is bounded:
    // each resource of a page is projected through it.
    for list in ["/Users?filter=userName%20eq%20%22nobody%22&", "/Groups?filter=displayName%20eq%20%22none%22&"] {
        let r = scim.get(&format!("{list}attributes=name.givenName.extra")).await;
        assert_eq!(
            (r.status, r.body["scimType"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalidPath")),
            "{}",
            r.body
        );
    }
    let names = vec!["userName"; 201].join(",");
    for search in ["/Users/.search", "/Groups/.search", "/.search"] {
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "attributes": names});
        let r = scim.post(search, body).await;
        assert_eq!(
            (r.status, r.body["scimType"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalidValue")),
            "{}",
            r.body
        );
        assert!(r.body["detail"].as_str().unwrap().contains("at most 200 names"), "{}", r.body);
    }
    let names = vec!["userName"; 200].join(",");
    let r = scim.get(&format!("/Users?count=1&attributes={names}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// A page of groups with their members ends at the group that takes it
/// past `scim.members_per_page`, one group at least; `itemsPerPage` says how
/// many came and the next page starts after them. Without members, the
/// page is as asked.
#[tokio::test]
async fn a_page_of_groups_holds_at_most_members_per_page_members() {
    let app = TestApp::spawn_adjusted(|s| s.scim.members_per_page = 3).await;
    let scim = app.scim().await;
    let a = scim.create_user(user("mpa@acme.com")).await;
    let b = scim.create_user(user("mpb@acme.com")).await;
    for name in ["MP1", "MP2"] {
        let r = scim.post("/Groups", json!({"displayName": name, "members": [{"value": a}, {"value": b}]})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    scim.post("/Groups", json!({"displayName": "MP3"})).await;
    let names = |body: &serde_json::Value| -> Vec<String> {
        body["Resources"].as_array().unwrap().iter().map(|g| g["displayName"].as_str().unwrap().to_string()).collect()
    };
    let first = scim.get("/Groups?count=10").await.body;
    assert_eq!(
        (names(&first), &first["itemsPerPage"], &first["totalResults"]),
        (vec!["MP1".into()], &json!(1), &json!(3))
    );
    assert_eq!(first["Resources"][0]["members"].as_array().unwrap().len(), 2);
    let next = scim.get("/Groups?count=10&startIndex=2").await.body;
    assert_eq!(names(&next), ["MP2", "MP3"], "{next}");
    let without = scim.get("/Groups?count=10&excludedAttributes=members").await.body;
    assert_eq!(names(&without), ["MP1", "MP2", "MP3"], "{without}");
}

#[tokio::test]
async fn a_group_written_out_whole_is_the_group_a_list_renders() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let named = scim.create_user(json!({"userName": "named@acme.com", "displayName": "Named One"})).await;
    let plain = scim.create_user(user("plain@acme.com")).await;
    let given = scim.create_user(user("given@acme.com")).await;
    let inner = scim.post("/Groups", json!({"displayName": "Inner"})).await.body["id"].as_str().unwrap().to_string();
    let created = scim
        .post(
            "/Groups",
            json!({"displayName": "Outer", "externalId": "ext-outer", "members": [
                {"value": named}, {"value": plain}, {"value": given, "display": "Sent Display"}, {"value": inner}
            ]}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let gid = created.body["id"].as_str().unwrap().to_string();
    // GET, POST and the default PATCH answer write the group out directly;
    // a list renders it through the general path.
    let got = scim.get(&format!("/Groups/{gid}")).await.body;
    let listed = scim.get(&format!("/Groups?filter=id%20eq%20%22{gid}%22")).await.body["Resources"][0].clone();
    assert_eq!(got, listed);
    assert_eq!(created.body, listed);
    let patched = scim
        .patch(&format!("/Groups/{gid}"), patch_op(json!([{"op": "replace", "path": "externalId", "value": "x"}])))
        .await;
    let listed = scim.get(&format!("/Groups?filter=id%20eq%20%22{gid}%22")).await.body["Resources"][0].clone();
    assert_eq!(patched.body, listed);
    let displays: Vec<(&str, &str, &str)> = got["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["value"].as_str().unwrap(), m["type"].as_str().unwrap(), m["display"].as_str().unwrap()))
        .collect();
    let mut want = vec![
        (named.as_str(), "User", "Named One"),
        (plain.as_str(), "User", "plain@acme.com"),
        (given.as_str(), "User", "Sent Display"),
        (inner.as_str(), "Group", "Inner"),
    ];
    want.sort();
    assert_eq!(displays, want);
    assert!(got["members"][0]["$ref"].as_str().unwrap().ends_with(&format!("/{}", want[0].0)));
}

#[tokio::test]
async fn concurrent_patches_of_one_resource_each_land_with_a_version_of_their_own() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let id = scim.create_user(user("busy@acme.com")).await;
    let mut members = Vec::new();
    for i in 0..8 {
        members.push(scim.create_user(user(&format!("m{i}@acme.com"))).await);
    }
    let gid = scim.post("/Groups", json!({"displayName": "Busy"})).await.body["id"].as_str().unwrap().to_string();
    // Each PATCH adds something of its own, all at once: none may be lost to
    // another's read of the same version, and each makes a version.
    let mut running = tokio::task::JoinSet::new();
    for (i, member) in members.iter().enumerate() {
        let (client, path) = (scim.clone(), format!("/Users/{id}"));
        let ops = json!([{"op": "add", "path": "phoneNumbers", "value": [{"value": format!("+1555000{i}"), "type": "work"}]}]);
        running.spawn(async move { client.patch(&path, patch_op(ops)).await });
        let (client, path) = (scim.clone(), format!("/Groups/{gid}"));
        let ops = json!([{"op": "add", "path": "members", "value": [{"value": member}]}]);
        running.spawn(async move { client.patch(&path, patch_op(ops)).await });
    }
    while let Some(done) = running.join_next().await {
        let r = done.unwrap();
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let got = scim.get(&format!("/Users/{id}")).await.body;
    assert_eq!(got["phoneNumbers"].as_array().map(Vec::len), Some(8), "{got}");
    assert_eq!(got["meta"]["version"], "W/\"9\"");
    let got = scim.get(&format!("/Groups/{gid}")).await.body;
    assert_eq!(got["members"].as_array().map(Vec::len), Some(8), "{got}");
    assert_eq!(got["meta"]["version"], "W/\"9\"");
}

#[tokio::test]
async fn if_match_with_a_stale_etag_is_412() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let id = scim.create_user(user("etag@acme.com")).await;
    scim.patch(&format!("/Users/{id}"), patch_op(json!([{"op": "replace", "path": "title", "value": "X"}]))).await;
    let r = scim
        .patch_if_match(
            &format!("/Users/{id}"),
            patch_op(json!([{"op": "replace", "path": "title", "value": "Y"}])),
            "W/\"1\"",
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    let r = scim
        .http
        .get(format!("{}/Users/{id}", scim.base))
        .bearer_auth(&scim.key)
        .header("if-none-match", "W/\"2\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    // RFC 9110 §15.4.5: a 304 carries the ETag a 200 would have.
    assert_eq!(r.headers().get("etag").and_then(|v| v.to_str().ok()), Some("W/\"2\""));
    // The provisioning log has the status sent: the 304 as 304, a projection
    // refused as that refusal only (it was a 200 read, then the refusal).
    assert_eq!(scim.get(&format!("/Users/{id}?attributes=name.givenName.extra")).await.status, StatusCode::BAD_REQUEST);
    let seen = logged(&app, &scim, &id).await;
    assert_eq!(reads(&seen), [304], "{seen:?}");
    assert_eq!(seen.first().map(|(op, s)| (op.as_str(), *s)), Some(("fail", 400)), "{seen:?}");
}

/// A resource's provisioning-log entries, newest first: (operation, status).
async fn logged(app: &TestApp, scim: &Scim, id: &str) -> Vec<(String, u64)> {
    let (_, logs) =
        app.get(&format!("/api/v1/provisioning-logs?scim_connection_id={}&resource_id={id}", scim.connection_id)).await;
    logs["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["operation"].as_str().unwrap().to_string(), e["status"].as_u64().unwrap()))
        .collect()
}

/// The statuses of the reads among `seen`.
fn reads(seen: &[(String, u64)]) -> Vec<u64> {
    seen.iter().filter(|(op, _)| op == "read").map(|(_, s)| *s).collect()
}

#[tokio::test]
async fn delete_removes_the_user_from_scim_but_keeps_a_tombstone() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let id = scim.create_user(user("gone@acme.com")).await;
    let r = scim.delete(&format!("/Users/{id}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(scim.get(&format!("/Users/{id}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(scim.delete(&format!("/Users/{id}")).await.status, StatusCode::NOT_FOUND);
    assert!(scim.filter_ids("Users", "userName eq \"gone@acme.com\"").await.is_empty());
    let conn = scim.connection_id.clone();
    let rows = app
        .state
        .store
        .read_blocking(move |c| {
            tandem_store::scim::users::find_by_key(
                c,
                &conn,
                tandem_core::matching::ScimKey::UserNameLower,
                "gone@acme.com",
            )
        })
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].deleted_at.is_some(), "tombstone kept for the login join");
    // The userName is free again for a new user.
    scim.create_user(user("gone@acme.com")).await;
}

#[tokio::test]
async fn deactivated_user_stays_readable_and_filterable() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let id = scim.create_user(user("inactive@acme.com")).await;
    scim.patch(&format!("/Users/{id}"), patch_op(json!([{"op": "replace", "path": "active", "value": false}]))).await;
    let r = scim.get(&format!("/Users/{id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["active"], false);
    assert_eq!(scim.filter_ids("Users", "active eq false").await, [id]);
}

#[tokio::test]
async fn a_connections_key_never_reaches_another_connection() {
    let app = TestApp::spawn().await;
    let a = app.scim().await;
    let b = app.scim().await;
    let id = a.create_user(user("iso@acme.com")).await;
    // B's key on A's URL: refused.
    let r = a.send_with_key(Method::GET, &format!("/Users/{id}"), None, &b.key).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = a.send_with_key(Method::POST, "/Users", Some(user("x@acme.com")), &b.key).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // B's own URL does not see A's user.
    assert_eq!(b.get(&format!("/Users/{id}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(b.delete(&format!("/Users/{id}")).await.status, StatusCode::NOT_FOUND);
    assert!(b.filter_ids("Users", "userName eq \"iso@acme.com\"").await.is_empty());
    // An integration key is not a SCIM key.
    let r = a.send_with_key(Method::GET, "/Users", None, &app.key).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn missing_or_wrong_scim_key_is_401_in_the_scim_error_schema() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let r = scim.http.get(format!("{}/Users", scim.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error");
    assert_eq!(body["status"], "401");
}

#[tokio::test]
async fn expired_key_is_refused_saying_it_expired_and_when() {
    let app = TestApp::spawn().await;
    let conn =
        app.post("/api/v1/scim-connections", json!({"customer_id": unique("exp"), "api_key_ttl_days": 1})).await.1;
    let scim = Scim {
        base: conn["scim_base_url"].as_str().unwrap().into(),
        key: conn["scim_api_key"].as_str().unwrap().into(),
        connection_id: conn["scim_connection_id"].as_str().unwrap().into(),
        http: app.http.clone(),
    };
    assert_eq!(scim.get("/Users").await.status, StatusCode::OK);
    app.clock.advance(chrono::Duration::days(2));
    let r = scim.get("/Users").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let detail = r.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("expired at") && detail.contains(&conn["api_key_expires_at"].as_str().unwrap()[..16]),
        "{detail}"
    );
}

#[tokio::test]
async fn rotated_key_keeps_working_through_the_grace_period_over_http() {
    let app = TestApp::spawn().await;
    let mut scim = app.scim().await;
    let (_, rotated) =
        app.post(&format!("/api/v1/scim-connections/{}/rotate-key", scim.connection_id), json!({})).await;
    let old = scim.key.clone();
    assert_eq!(scim.get("/Users").await.status, StatusCode::OK, "old key in grace");
    scim.key = rotated["scim_api_key"].as_str().unwrap().into();
    assert_eq!(scim.get("/Users").await.status, StatusCode::OK, "new key");
    app.clock.advance(chrono::Duration::hours(25));
    let r = scim.send_with_key(Method::GET, "/Users?count=5", None, &old).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body["detail"].as_str().unwrap().contains("grace period ended"));
    assert_eq!(scim.get("/Users").await.status, StatusCode::OK);
    // The connection's own key, rotated out: its IdP is failing to provision, and the log says so.
    let (_, logs) =
        app.get(&format!("/api/v1/provisioning-logs?scim_connection_id={}&failed=true", scim.connection_id)).await;
    let refused = logs["data"].as_array().unwrap().iter().find(|e| e["status"] == 401).expect("a 401 entry");
    assert_eq!(refused["operation"], "fail", "{refused}");
    assert_eq!(refused["method"], "GET", "{refused}");
    assert_eq!(refused["path"], format!("/scim/v2/{}/Users?count=5", scim.connection_id), "{refused}");
    assert!(refused["detail"].as_str().unwrap().contains("grace period ended"), "{refused}");
}

#[tokio::test]
async fn malformed_bodies_get_scim_errors_never_500() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let id = scim.create_user(user("m@acme.com")).await;
    let raw = |method: Method, path: String, body: &'static str| {
        let req = scim
            .http
            .request(method, format!("{}{path}", scim.base))
            .bearer_auth(&scim.key)
            .header("content-type", "application/scim+json")
            .body(body);
        async move {
            let r = req.send().await.unwrap();
            let s = r.status();
            (s, r.json::<serde_json::Value>().await.unwrap_or_default())
        }
    };
    for (method, path, body) in [
        (Method::POST, "/Users".to_string(), "{not json"),
        (Method::POST, "/Users".to_string(), "[]"),
        (Method::POST, "/Users".to_string(), "{\"userName\": {\"a\": 1}}"),
        (Method::POST, "/Users".to_string(), "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"]}"),
        (Method::POST, "/Users".to_string(), "{\"userName\": \"a@b.c\", \"emails\": \"nope\"}"),
        (Method::POST, "/Users".to_string(), ""),
        (Method::PATCH, format!("/Users/{id}"), "{\"Operations\": \"x\"}"),
        (Method::PATCH, format!("/Users/{id}"), "{\"Operations\": [{\"op\": \"merge\"}]}"),
        (Method::PATCH, format!("/Users/{id}"), "{\"Operations\": [{\"op\": \"remove\"}]}"),
        (
            Method::PATCH,
            format!("/Users/{id}"),
            "{\"Operations\": [{\"op\": \"add\", \"path\": \"emails[type eq\", \"value\": 1}]}",
        ),
        (
            Method::PATCH,
            format!("/Users/{id}"),
            "{\"Operations\": [{\"op\": \"replace\", \"path\": \"active\", \"value\": \"maybe\"}]}",
        ),
        (
            Method::PATCH,
            format!("/Users/{id}"),
            "{\"Operations\": [{\"op\": \"replace\", \"path\": \"id\", \"value\": \"x\"}]}",
        ),
        (Method::PUT, format!("/Users/{id}"), "{\"name\": {}}"),
        (Method::POST, "/Groups".to_string(), "{\"displayName\": {\"a\": 1}}"),
        (Method::POST, "/Users/.search".to_string(), "{\"filter\": 5}"),
    ] {
        let (status, body) = raw(method.clone(), path.clone(), body).await;
        assert!(status.is_client_error(), "{method} {path} {body}: {status}");
        assert_eq!(body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error", "{method} {path}");
        assert!(!body["detail"].as_str().unwrap_or_default().is_empty());
    }
    // Past scim.max_body_bytes (8 MiB by default).
    let big = format!("{{\"userName\": \"{}\"}}", "x".repeat(9 * 1024 * 1024));
    let r = scim.http.post(format!("{}/Users", scim.base)).bearer_auth(&scim.key).body(big).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

/// Brackets on a single-valued complex attribute the user does not have
/// match nothing, negations inside them included (as in memory).
#[tokio::test]
async fn brackets_on_an_absent_complex_attribute_match_nothing() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let named = scim.create_user(user("named@acme.com")).await;
    let mut bare = user("bare@acme.com");
    bare.as_object_mut().unwrap().remove("name");
    scim.create_user(bare).await;
    for (filter, want) in [
        ("name[not (givenName pr)]", vec![]),
        ("name[givenName ne \"Bob\"]", vec![named.clone()]),
        ("name[givenName eq null]", vec![]),
        (
            "not (name[givenName eq \"Given\"])",
            vec![scim.filter_ids("Users", "userName eq \"bare@acme.com\"").await[0].clone()],
        ),
    ] {
        assert_eq!(scim.filter_ids("Users", filter).await, want, "{filter}");
    }
}

/// An unquoted number for a string is kept as its text only when whole:
/// a float's text is not what was sent, and a later lookup by it would miss.
#[tokio::test]
async fn an_unquoted_number_for_a_string_is_kept_only_when_whole() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let post = |body: &'static str| {
        scim.http
            .post(format!("{}/Users", scim.base))
            .bearer_auth(&scim.key)
            .header("Content-Type", "application/scim+json")
            .body(body)
            .send()
    };
    let r = post(r#"{"userName": 123456789012345678901234567890}"#).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["scimType"], "invalidValue", "{body}");
    assert!(body["detail"].as_str().unwrap().contains("send it quoted"), "{body}");
    let r = post(r#"{"userName": 9007199254740993}"#).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(scim.filter_ids("Users", "userName eq \"9007199254740993\"").await.len(), 1);
}

/// `eq null` on a multi-valued attribute finds the users holding none of
/// its values, and `ne null` those holding one (RFC 7644 §3.4.2.2: null is
/// "no value").
#[tokio::test]
async fn null_comparisons_on_a_multi_valued_attribute_mean_holding_none_or_some() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let tag = unique("nul");
    let with =
        scim.create_user(json!({"userName": format!("{tag}-a@acme.com"), "emails": [{"value": "a@acme.com"}]})).await;
    let without = scim.create_user(json!({"userName": format!("{tag}-b@acme.com")})).await;
    let mine = format!("userName sw \"{tag}-\"");
    assert_eq!(scim.filter_ids("Users", &format!("{mine} and emails eq null")).await, vec![without.clone()]);
    assert_eq!(scim.filter_ids("Users", &format!("{mine} and emails ne null")).await, vec![with.clone()]);
    assert_eq!(scim.filter_ids("Users", &format!("{mine} and emails.value eq null")).await, vec![without.clone()]);
    assert!(scim.filter_ids("Users", &format!("{mine} and emails gt null")).await.is_empty());
    // An empty string holds no value either, as `pr` reads it: in a column and in the document.
    let empty = scim
        .create_user(json!({"userName": format!("{tag}-c@acme.com"), "externalId": "", "title": "", "emails": [{"value": "c@acme.com"}]}))
        .await;
    for attr in ["externalId", "title"] {
        assert_eq!(scim.filter_ids("Users", &format!("{mine} and {attr} pr")).await, Vec::<String>::new(), "{attr}");
        let mut none = scim.filter_ids("Users", &format!("{mine} and {attr} eq null")).await;
        none.sort();
        let mut all = vec![with.clone(), empty.clone(), without.clone()];
        all.sort();
        assert_eq!(none, all, "{attr} eq null");
        assert!(scim.filter_ids("Users", &format!("{mine} and {attr} ne null")).await.is_empty(), "{attr}");
    }
}

/// A filter makes at most 16 comparisons that read every resource's
/// document; comparisons of indexed columns are not counted.
#[tokio::test]
async fn a_filter_of_many_comparisons_on_the_document_is_refused_naming_the_bound() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let id = scim.create_user(json!({"userName": "fb@acme.com", "title": "t3"})).await;
    let chain =
        |term: &str, n: usize| (0..n).map(|i| term.replace('#', &i.to_string())).collect::<Vec<_>>().join(" or ");
    assert_eq!(scim.filter_ids("Users", &chain("title eq \"t#\"", 16)).await, vec![id.clone()]);
    let encoded: String = url::form_urlencoded::byte_serialize(chain("title eq \"t#\"", 17).as_bytes()).collect();
    let r = scim.get(&format!("/Users?filter={encoded}")).await;
    assert_eq!((r.status, &r.body["scimType"]), (StatusCode::BAD_REQUEST, &json!("invalidFilter")), "{}", r.body);
    assert!(r.body["detail"].as_str().unwrap().starts_with("filter makes 17 comparisons"), "{}", r.body);
    let ids = scim.filter_ids("Users", &format!("{} or userName eq \"fb@acme.com\"", chain("id eq \"#\"", 60))).await;
    assert_eq!(ids, vec![id.clone()]);
    // A user's displayName has a column but no index: each comparison reads every user.
    let encoded: String = url::form_urlencoded::byte_serialize(chain("displayName eq \"d#\"", 17).as_bytes()).collect();
    let r = scim.get(&format!("/Users?filter={encoded}")).await;
    assert_eq!((r.status, &r.body["scimType"]), (StatusCode::BAD_REQUEST, &json!("invalidFilter")), "{}", r.body);
    let ids =
        scim.filter_ids("Users", &format!("{} or externalId eq \"x\"", chain("userName eq \"fb@acme.co#\"", 40))).await;
    assert!(ids.is_empty(), "{ids:?}");
}

/// Many operations on a resource of many values are refused (`tooMany`)
/// before they run, and change nothing; within the bound, a thousand
/// operations on a group taken as a document, or an add of two hundred
/// values (to a user's two thousand, within its 64 KiB), are applied.
#[tokio::test]
async fn a_patch_that_would_go_through_too_many_values_is_refused_whole() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let emails: Vec<_> = (0..2_000).map(|i| json!({"value": format!("e{i}@x.example"), "type": "work"})).collect();
    let id = scim.create_user(json!({"userName": "many@acme.com", "emails": emails})).await;
    let op = json!({"op": "replace", "path": "emails[value eq \"e0@x.example\"].display", "value": "d"});
    let r = scim.patch(&format!("/Users/{id}"), patch_op(serde_json::Value::Array(vec![op.clone(); 600]))).await;
    assert_eq!((r.status, &r.body["scimType"]), (StatusCode::BAD_REQUEST, &json!("tooMany")), "{}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("several requests"), "{}", r.body);
    let r = scim.get(&format!("/Users/{id}")).await;
    assert_eq!(r.body["emails"][0].get("display"), None, "nothing applied");
    let r = scim.patch(&format!("/Users/{id}"), patch_op(serde_json::Value::Array(vec![op; 10]))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["emails"][0]["display"], "d");
    // A group taken as a document (members sent with a type).
    let mut members = Vec::new();
    for i in 0..40 {
        members.push(json!({"value": scim.create_user(user(&format!("tm{i}@acme.com"))).await}));
    }
    let g = scim.post("/Groups", json!({"displayName": "Typed", "members": members})).await;
    let gid = g.body["id"].as_str().unwrap().to_string();
    let add = json!({"op": "add", "path": "members", "value": [{"value": id, "type": "User"}]});
    let r = scim.patch(&format!("/Groups/{gid}"), patch_op(serde_json::Value::Array(vec![add.clone(); 1000]))).await;
    assert_eq!(r.status, StatusCode::OK, "40 members x 1000 operations is within the bound: {}", r.body);
    let r = scim.patch(&format!("/Users/{id}"), patch_op(json!([{"op": "add", "path": "emails", "value": (0..200).map(|i| json!({"value": format!("f{i}@x.example")})).collect::<Vec<_>>()}]))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// SCIM bodies have a limit of their own, above the management API's: Okta
/// writes a group whole (a PUT with every member), which outgrows the API's.
#[tokio::test]
async fn a_group_written_whole_may_be_larger_than_an_api_request() {
    let app = TestApp::spawn_adjusted(|s| {
        s.server.max_body_bytes = 4096;
        s.scim.max_body_bytes = 64 * 1024;
    })
    .await;
    let scim = app.scim().await;
    let mut members = Vec::new();
    for i in 0..150 {
        let id = scim.create_user(user(&format!("big{i:03}@acme.com"))).await;
        members.push(json!({"value": id, "display": format!("big{i:03}@acme.com"), "type": "User"}));
    }
    let group = scim.post("/Groups", json!({"displayName": "All staff"})).await;
    let id = group.body["id"].as_str().unwrap().to_string();
    let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": id,
                      "displayName": "All staff", "members": members});
    assert!(body.to_string().len() > 4096 * 3, "larger than an API request may be");
    let r = scim.put(&format!("/Groups/{id}"), body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["members"].as_array().map(Vec::len), Some(150));
    // Past the SCIM limit: refused, naming it; the API keeps its own.
    let big = json!({"displayName": "x".repeat(70 * 1024)}).to_string();
    let r = scim.http.post(format!("{}/Groups", scim.base)).bearer_auth(&scim.key).body(big).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let detail = r.json::<serde_json::Value>().await.unwrap()["detail"].as_str().unwrap_or_default().to_string();
    assert!(detail.contains("65536 bytes"), "{detail}");
    let (status, _) =
        app.post("/api/v1/scim-connections", json!({"customer_id": "y".repeat(200), "pad": "p".repeat(5000)})).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let spc = scim.get("/ServiceProviderConfig").await;
    assert_eq!(spc.body["bulk"]["maxPayloadSize"], 64 * 1024, "{}", spc.body);
}

#[tokio::test]
async fn groups_hold_checked_members_and_users_show_their_groups() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let alice = scim.create_user(user("alice@acme.com")).await;
    let bob = scim.create_user(user("bob@acme.com")).await;
    let r = scim
        .post(
            "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Engineering",
        "members": [{"value": alice}, {"value": bob}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let gid = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["members"].as_array().unwrap().len(), 2);
    let u = scim.get(&format!("/Users/{alice}")).await;
    assert_eq!(u.body["groups"][0]["value"], gid);
    assert_eq!(u.body["groups"][0]["display"], "Engineering");
    assert_eq!(scim.filter_ids("Groups", &format!("members[value eq \"{bob}\"]")).await, std::slice::from_ref(&gid));
    assert_eq!(scim.filter_ids("Users", &format!("groups.value eq \"{gid}\"")).await.len(), 2);
    assert_eq!(scim.filter_ids("Groups", "displayName eq \"engineering\"").await, std::slice::from_ref(&gid));
    // An unknown member is refused, not stored dangling.
    let r = scim.post("/Groups", json!({"displayName": "Ghosts", "members": [{"value": "no-such-user"}]})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["scimType"], "invalidValue");
    assert!(r.body["detail"].as_str().unwrap().contains("no-such-user"));
    // displayName is unique per connection.
    let r = scim.post("/Groups", json!({"displayName": "ENGINEERING"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["scimType"], "uniqueness");
    // excludedAttributes=members leaves them out.
    let r = scim.get(&format!("/Groups/{gid}?excludedAttributes=members")).await;
    assert!(r.body.get("members").is_none());
    // Excluding a sub-attribute keeps the members without it; asking for the whole schema keeps them.
    let core = "urn:ietf:params:scim:schemas:core:2.0:Group";
    for list in [format!("/Groups?filter=id%20eq%20%22{gid}%22&"), format!("/Groups/{gid}?")] {
        let r = scim.get(&format!("{list}excludedAttributes=members.display")).await;
        let g = if r.body["Resources"].is_array() { &r.body["Resources"][0] } else { &r.body };
        let members = g["members"].as_array().unwrap_or_else(|| panic!("{list}: {}", r.body));
        assert_eq!(members.len(), 2, "{list}: {}", r.body);
        assert!(members.iter().all(|m| m.get("display").is_none() && m["value"].is_string()), "{list}: {}", r.body);
        let r = scim.get(&format!("{list}attributes={core}")).await;
        let g = if r.body["Resources"].is_array() { &r.body["Resources"][0] } else { &r.body };
        assert_eq!(g["members"].as_array().map(Vec::len), Some(2), "{list}: {}", r.body);
        assert_eq!(g["displayName"], "Engineering", "{list}: {}", r.body);
    }
    // Deleting a user drops its memberships.
    scim.delete(&format!("/Users/{bob}")).await;
    let r = scim.get(&format!("/Groups/{gid}")).await;
    assert_eq!(r.body["members"].as_array().unwrap().len(), 1);
    assert_eq!(scim.delete(&format!("/Groups/{gid}")).await.status, StatusCode::NO_CONTENT);
    assert_eq!(scim.get(&format!("/Groups/{gid}")).await.status, StatusCode::NOT_FOUND);
}

/// A PATCH whose value filter compares a member's `type` selects by it:
/// `members[type eq "Group"]` removes the nested groups and keeps the users.
#[tokio::test]
async fn a_member_filter_on_type_selects_nested_groups() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let a = scim.create_user(user("ta@acme.com")).await;
    let inner_id = scim.create_group(json!({"displayName": "Typed inner", "members": [{"value": a}]})).await;
    let outer_id = scim
        .create_group(json!({"displayName": "Typed outer", "members": [{"value": a}, {"value": inner_id.clone()}]}))
        .await;
    let ops = json!([{"op": "remove", "path": "members[type eq \"Group\"]"}]);
    let r = scim.patch(&format!("/Groups/{outer_id}"), patch_op(ops)).await;
    assert!(r.status.is_success(), "{}", r.body);
    let members = scim.get(&format!("/Groups/{outer_id}")).await.body["members"].clone();
    let ids: Vec<&str> = members.as_array().unwrap().iter().map(|m| m["value"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![a.as_str()], "{members}");
    // A filter compares the display a member shows: the one it was sent
    // with, else its own; $ref is built, not filterable.
    let shown_id = scim
        .create_group(json!({"displayName": "Typed shown", "members": [{"value": a, "display": "Ada Typed"}]}))
        .await;
    assert_eq!(scim.filter_ids("Groups", "members.display eq \"ada typed\"").await, vec![shown_id.clone()]);
    assert_eq!(scim.filter_ids("Groups", "members[display eq \"Ada Typed\"]").await, vec![shown_id.clone()]);
    let mut own = scim.filter_ids("Groups", "members.display eq \"TA@acme.com\"").await;
    own.sort();
    let mut want = vec![inner_id.clone(), outer_id.clone()];
    want.sort();
    assert_eq!(own, want, "a member sent without display shows its userName");
    let nesting = scim.create_group(json!({"displayName": "Typed nesting", "members": [{"value": inner_id}]})).await;
    assert_eq!(
        scim.filter_ids("Groups", "members[type eq \"Group\" and display sw \"typed inn\"]").await,
        vec![nesting]
    );
    assert!(scim.filter_ids("Groups", "members.display pr").await.contains(&inner_id), "shown, so present");
    let encoded: String = url::form_urlencoded::byte_serialize(b"members.$ref eq \"x\"").collect();
    let r = scim.get(&format!("/Groups?filter={encoded}")).await;
    assert_eq!((r.status, &r.body["scimType"]), (StatusCode::BAD_REQUEST, &json!("invalidFilter")), "{}", r.body);
}

/// A group whose member is deleted has changed (RFC 7644 §3.14): a new
/// version, so a cached copy is not answered 304, and a later lastModified,
/// so a delta sync sees it.
#[tokio::test]
async fn deleting_a_member_gives_its_groups_a_new_version() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let a = scim.create_user(user("va@acme.com")).await;
    let b = scim.create_user(user("vb@acme.com")).await;
    let inner_id = scim.create_group(json!({"displayName": "Inner", "members": [{"value": a}]})).await;
    let outer_id = scim
        .create_group(json!({"displayName": "Outer", "members": [{"value": b}, {"value": inner_id.clone()}]}))
        .await;
    let seen = |r: &ScimResponse| (r.body["meta"]["version"].clone(), r.body["meta"]["lastModified"].clone());
    let before = seen(&scim.get(&format!("/Groups/{outer_id}")).await);
    app.clock.advance(chrono::Duration::seconds(1));
    assert_eq!(scim.delete(&format!("/Users/{b}")).await.status, StatusCode::NO_CONTENT);
    let after_user = scim.get(&format!("/Groups/{outer_id}")).await;
    assert_eq!(after_user.body["members"].as_array().unwrap().len(), 1);
    let (version, modified) = seen(&after_user);
    assert_ne!(version, before.0, "{}", after_user.body);
    assert!(modified.as_str().unwrap() > before.1.as_str().unwrap(), "{}", after_user.body);
    let r = scim
        .http
        .get(format!("{}/Groups/{outer_id}", scim.base))
        .bearer_auth(&scim.key)
        .header("if-none-match", before.0.as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the old ETag no longer matches");
    // A nested group deleted: its parent changes too.
    assert_eq!(scim.delete(&format!("/Groups/{inner_id}")).await.status, StatusCode::NO_CONTENT);
    let after_group = scim.get(&format!("/Groups/{outer_id}")).await;
    assert!(after_group.body.get("members").is_none_or(|m| m.as_array().unwrap().is_empty()), "{}", after_group.body);
    assert_ne!(seen(&after_group).0, version, "{}", after_group.body);
}

#[tokio::test]
async fn a_group_membership_patch_changes_only_the_members_it_names_and_can_answer_204() {
    let dir = scratch_dir();
    let mut settings = test_settings(&dir);
    settings.scim.group_patch_answer = tandem_web::state::GroupPatchAnswer::NoContent;
    let app = TestApp::spawn_with(settings, dir).await;
    let scim = app.scim().await;
    let a = scim.create_user(user("pa@acme.com")).await;
    let b = scim.create_user(user("pb@acme.com")).await;
    let c = scim.create_user(user("pc@acme.com")).await;
    let g = scim
        .post("/Groups", json!({"displayName": "Patched", "members": [{"value": a, "display": "A"}, {"value": b}]}))
        .await;
    let gid = g.body["id"].as_str().unwrap().to_string();
    let patch = |query: &str, ops: serde_json::Value| {
        let (path, body, scim) = (format!("/Groups/{gid}{query}"), patch_op(ops), &scim);
        async move { scim.patch(&path, body).await }
    };
    let members = |doc: &serde_json::Value| -> Vec<(String, String)> {
        let mut m: Vec<(String, String)> = doc["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["value"].as_str().unwrap().to_string(), m["display"].as_str().unwrap_or("").to_string()))
            .collect();
        m.sort();
        m
    };
    // An If-Match naming an older version changes nothing.
    let stale = scim
        .patch_if_match(
            &format!("/Groups/{gid}"),
            patch_op(json!([{"op": "add", "path": "members", "value": [{"value": c}]}])),
            "W/\"0\"",
        )
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED, "{}", stale.body);
    // So does one with bytes outside ASCII, which cannot name any version.
    let unreadable = scim
        .http
        .patch(format!("{}/Groups/{gid}", scim.base))
        .bearer_auth(&scim.key)
        .header("if-match", reqwest::header::HeaderValue::from_bytes(b"W/\"1\xc3\xa9\"").unwrap())
        .header("content-type", "application/scim+json")
        .body(patch_op(json!([{"op": "add", "path": "members", "value": [{"value": c}]}])).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(unreadable.status(), StatusCode::PRECONDITION_FAILED);
    // Entra's and Okta's shapes in one PATCH: an add (one member new, one given a
    // new display text) and a remove through a filter, in another case.
    let r = patch(
        "",
        json!([
            {"op": "Add", "path": "members", "value": [{"value": c}, {"value": a, "display": "A2"}]},
            {"op": "Remove", "path": format!("members[value eq \"{}\"]", b.to_uppercase())},
            {"op": "replace", "path": "externalId", "value": "ext-1"}
        ]),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(r.headers["etag"], "W/\"2\"");
    let got = scim.get(&format!("/Groups/{gid}")).await.body;
    let mut want = vec![(a.clone(), "A2".to_string()), (c.clone(), "pc@acme.com".to_string())];
    want.sort();
    assert_eq!(members(&got), want);
    assert_eq!((got["externalId"].as_str(), got["meta"]["version"].as_str()), (Some("ext-1"), Some("W/\"2\"")));
    // An unknown member is refused by name and changes nothing.
    let r = patch(
        "",
        json!([{"op": "add", "path": "members", "value": [{"value": "no-such-user"}]},
               {"op": "remove", "path": "members", "value": [{"value": a}]}]),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.body["scimType"], "invalidValue");
    assert!(r.body["detail"].as_str().unwrap().contains("no-such-user"), "{}", r.body);
    assert_eq!(members(&scim.get(&format!("/Groups/{gid}")).await.body), want);
    // Many unknown members: the first ten are named, the rest counted.
    let many: Vec<serde_json::Value> = (0..500).map(|i| json!({"value": format!("ghost-{i:03}")})).collect();
    let r = patch("", json!([{"op": "add", "path": "members", "value": many}])).await;
    let detail = r.body["detail"].as_str().unwrap();
    assert!(detail.contains("and 490 more") && detail.len() < 500, "{detail}");
    // Asked for attributes, the answer is the group, projected.
    let r = patch("?excludedAttributes=members", json!([{"op": "remove", "path": "members", "value": [{"value": a}]}]))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.get("members").is_none() && r.body["displayName"] == "Patched", "{}", r.body);
    // Shapes that need the whole list still work: a replace of all members.
    let r = patch("?attributes=members", json!([{"op": "replace", "path": "members", "value": [{"value": b}]}])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(members(&r.body), [(b.clone(), "pb@acme.com".to_string())]);
    // Each write is logged with what changed and the status answered.
    let (_, logs) = app.get(&format!("/api/v1/provisioning-logs?scim_connection_id={}", scim.connection_id)).await;
    let groups: Vec<(String, i64, serde_json::Value)> = logs["data"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .filter(|e| e["resource_type"] == "Group" && e["operation"] != "read")
        .map(|e| (e["operation"].as_str().unwrap().to_string(), e["status"].as_i64().unwrap(), e["reasons"].clone()))
        .collect();
    let ops: Vec<(&str, i64)> = groups.iter().map(|(o, s, _)| (o.as_str(), *s)).collect();
    assert_eq!(
        ops,
        [
            ("create", 201),
            ("fail", 412),
            ("fail", 412),
            ("update", 204),
            ("fail", 400),
            ("fail", 400),
            ("update", 200),
            ("update", 200)
        ]
    );
    assert_eq!(
        groups[3].2,
        json!([{"attribute": "externalId", "reason": "added"}, {"attribute": "members", "reason": "1 added, 1 removed"}])
    );
}

#[tokio::test]
async fn every_request_is_in_the_provisioning_log_with_reasons_for_failures() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let id = scim.create_user(user("log@acme.com")).await;
    scim.patch(&format!("/Users/{id}"), patch_op(json!([{"op": "replace", "path": "active", "value": false}]))).await;
    scim.patch(&format!("/Users/{id}"), patch_op(json!([{"op": "replace", "path": "active", "value": true}]))).await;
    scim.patch(&format!("/Users/{id}"), patch_op(json!([{"op": "replace", "path": "active", "value": true}]))).await;
    scim.patch(&format!("/Users/{id}"), patch_op(json!([{"op": "replace", "path": "title", "value": "T"}]))).await;
    scim.post("/Users", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]})).await;
    scim.get(&format!("/Users/{id}")).await;
    let gid = scim.post("/Groups", json!({"displayName": "Loggers"})).await.body["id"].as_str().unwrap().to_string();
    scim.patch(
        &format!("/Groups/{gid}"),
        patch_op(json!([{"op": "add", "path": "members", "value": [{"value": id}]},
                        {"op": "replace", "path": "displayName", "value": "Log keepers"}])),
    )
    .await;
    scim.delete(&format!("/Users/{id}")).await;
    let (status, logs) = app.get(&format!("/api/v1/provisioning-logs?scim_connection_id={}", scim.connection_id)).await;
    assert_eq!(status, StatusCode::OK);
    let ops: Vec<&str> =
        logs["data"].as_array().unwrap().iter().rev().map(|e| e["operation"].as_str().unwrap()).collect();
    for op in ["create", "deactivate", "reactivate", "skip", "update", "fail", "read", "delete"] {
        assert!(ops.contains(&op), "{op} missing from {ops:?}");
    }
    let fail = logs["data"].as_array().unwrap().iter().find(|e| e["operation"] == "fail").unwrap();
    assert_eq!(fail["status"], 400);
    assert_eq!(fail["reasons"][0]["attribute"], "userName");
    // Changes name the attributes they changed (never their values).
    let entry = |op: &str, rt: &str| {
        logs["data"].as_array().unwrap().iter().find(|e| e["operation"] == op && e["resource_type"] == rt).unwrap()
    };
    assert_eq!(entry("deactivate", "User")["reasons"], json!([{"attribute": "active", "reason": "changed"}]));
    assert_eq!(entry("update", "User")["reasons"], json!([{"attribute": "title", "reason": "added"}]));
    assert_eq!(entry("skip", "User")["reasons"], json!([]));
    assert_eq!(
        entry("update", "Group")["reasons"],
        json!([{"attribute": "displayName", "reason": "changed"}, {"attribute": "members", "reason": "1 added, 0 removed"}])
    );
    let create = entry("create", "User");
    assert_eq!(create["user_name"], "log@acme.com");
    assert_eq!(create["resource_id"], id);
    let (_, only_fail) =
        app.get(&format!("/api/v1/provisioning-logs?scim_connection_id={}&failed=true", scim.connection_id)).await;
    let failed = only_fail["data"].as_array().unwrap();
    let statuses: Vec<i64> = failed.iter().map(|e| e["status"].as_i64().unwrap()).collect();
    assert_eq!(statuses, [400], "only the failed create: {only_fail}");
    assert_eq!(failed[0]["id"], fail["id"]);
    let (status, bad) = app.get("/api/v1/provisioning-logs?operation=explode").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(invalid_fields(&bad), ["operation"]);
}

/// Attributes Tandem does not keep (an attribute the enterprise schema
/// lacks, an unknown name without a URN) do not fail the write, and the
/// provisioning log says they were not kept, on a create, a PUT and a PATCH.
#[tokio::test]
async fn the_provisioning_log_names_attributes_a_user_write_did_not_keep() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let mut body = user("custom@acme.com");
    body["schemas"] = json!(["urn:ietf:params:scim:schemas:core:2.0:User", enterprise]);
    body[enterprise] = json!({"badgeId": "7"});
    let created = scim.post("/Users", body.clone()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert!(created.body.get(enterprise).is_none(), "not kept: {}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let (status, page) = app.get(&format!("/api/v1/provisioning-logs?scim_connection_id={}", scim.connection_id)).await;
    assert_eq!(status, StatusCode::OK);
    let last = |page: &serde_json::Value| page["data"][0].clone();
    let entry = last(&page);
    assert_eq!(entry["operation"], "create");
    assert_eq!(entry["reasons"][0]["attribute"], format!("{enterprise}:badgeId"), "{entry}");
    assert!(entry["reasons"][0]["reason"].as_str().unwrap().starts_with("ignored"), "{entry}");

    // A PATCH of only such attributes changes nothing: a skip that says why.
    let ops = json!([{"op": "add", "path": format!("{enterprise}:badgeId"), "value": "8"},
                     {"op": "replace", "value": {"shoeSize": 44}}]);
    assert_eq!(scim.patch(&format!("/Users/{id}"), patch_op(ops)).await.status, StatusCode::OK);
    let (_, page) = app.get(&format!("/api/v1/provisioning-logs?scim_connection_id={}", scim.connection_id)).await;
    let entry = last(&page);
    assert_eq!(entry["operation"], "skip", "{entry}");
    let named: Vec<&str> =
        entry["reasons"].as_array().unwrap().iter().map(|r| r["attribute"].as_str().unwrap()).collect();
    assert_eq!(named, [format!("{enterprise}:badgeId"), "shoeSize".to_string()], "{entry}");

    // A PUT that changes a kept attribute lists the change and what was not kept.
    body["title"] = json!("Boss");
    assert_eq!(scim.put(&format!("/Users/{id}"), body).await.status, StatusCode::OK);
    let (_, page) = app.get(&format!("/api/v1/provisioning-logs?scim_connection_id={}", scim.connection_id)).await;
    let entry = last(&page);
    assert_eq!(entry["operation"], "update", "{entry}");
    assert_eq!(entry["reasons"][0], json!({"attribute": "title", "reason": "added"}), "{entry}");
    assert_eq!(entry["reasons"][1]["attribute"], format!("{enterprise}:badgeId"), "{entry}");
    assert!(entry["reasons"][1]["reason"].as_str().unwrap().starts_with("ignored: "), "{entry}");
    assert_eq!(entry["reasons"].as_array().unwrap().len(), 2, "{entry}");

    // However many unknown attributes a body holds, an entry names at most 50 and counts the rest.
    let mut many = user("many@acme.com");
    for i in 0..120 {
        many[format!("unknown{i}")] = json!(i);
    }
    assert_eq!(scim.post("/Users", many).await.status, StatusCode::CREATED);
    let (_, page) = app.get(&format!("/api/v1/provisioning-logs?scim_connection_id={}", scim.connection_id)).await;
    let reasons = last(&page)["reasons"].as_array().unwrap().clone();
    assert_eq!(reasons.len(), 51, "{reasons:?}");
    assert!(reasons[50]["reason"].as_str().unwrap().ends_with(": 70 more"), "{:?}", reasons[50]);
}

/// An IdP's custom extension (Entra ID's `CustomExtensionName`, an Okta
/// attribute with its own namespace) is kept as sent: answered, changed by
/// Entra's PATCH paths and Okta's PUT, selected by `attributes`, logged and
/// put in the event feed by name, shown to the app; filters cannot compare
/// it, and a resource keeps at most 64 KiB of it.
#[tokio::test]
async fn custom_extension_attributes_are_kept_changed_and_shown() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let core = "urn:ietf:params:scim:schemas:core:2.0:User";
    let custom = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User";
    let mut body = user("roles@acme.com");
    body["schemas"] = json!([core, custom]);
    body[custom] = json!({"role": "admin", "regions": ["eu"], "site": {"code": "OSL", "floor": 3}});
    let created = scim.post("/Users", body.clone()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body[custom], body[custom], "{}", created.body);
    assert_eq!(created.body["schemas"], json!([core, custom]));
    let id = created.body["id"].as_str().unwrap().to_string();
    let read = scim.get(&format!("/Users/{id}")).await;
    assert_eq!(read.body[custom], body[custom], "{}", read.body);
    assert_eq!(read.body["schemas"], json!([core, custom]));

    // Entra ID's PATCH of mapped custom attributes.
    let ops = json!([{"op": "Add", "path": format!("{custom}:regions"), "value": ["us"]},
                     {"op": "Replace", "path": format!("{custom}:role"), "value": "owner"},
                     {"op": "Remove", "path": format!("{custom}:site.floor")}]);
    let patched = scim.patch(&format!("/Users/{id}"), patch_op(ops)).await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    let expected = json!({"role": "owner", "regions": ["eu", "us"], "site": {"code": "OSL"}});
    assert_eq!(patched.body[custom], expected, "{}", patched.body);
    let (_, page) = app.get(&format!("/api/v1/provisioning-logs?scim_connection_id={}", scim.connection_id)).await;
    let entry = &page["data"][0];
    assert_eq!(entry["operation"], "update", "{entry}");
    let named: Vec<&str> =
        entry["reasons"].as_array().unwrap().iter().map(|r| r["attribute"].as_str().unwrap()).collect();
    assert_eq!(named, [format!("{custom}:regions"), format!("{custom}:role"), format!("{custom}:site")], "{entry}");
    let query = format!("scim_connection_id={}&type=user.updated", scim.connection_id);
    let (events, _) = read_all(&app, &query, 100, 1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        events[0]["data"]["changed"],
        json!([format!("{custom}:regions"), format!("{custom}:role"), format!("{custom}:site")]),
        "{events:?}"
    );

    // `attributes` and `excludedAttributes` select in it as in the enterprise extension.
    let picked = scim.get(&format!("/Users/{id}?attributes={custom}:role")).await;
    assert_eq!(picked.body[custom], json!({"role": "owner"}), "{}", picked.body);
    let without = scim.get(&format!("/Users/{id}?excludedAttributes={custom}")).await;
    assert!(without.body.get(custom).is_none(), "{}", without.body);
    assert_eq!(without.body["schemas"], json!([core]));

    // The management API and a login's `scim_user.resource` carry it.
    let (_, managed) = app.get(&format!("/api/v1/scim-connections/{}/users/{id}", scim.connection_id)).await;
    assert_eq!(managed[custom], expected, "{managed}");

    // Filters find the users holding the extension, but cannot compare its attributes.
    assert_eq!(scim.filter_ids("Users", &format!("schemas eq \"{custom}\"")).await, vec![id.clone()]);
    let compared = scim.get(&format!("/Users?filter={custom}:role%20eq%20%22owner%22")).await;
    assert_eq!(compared.status, StatusCode::BAD_REQUEST);
    assert_eq!(compared.body["scimType"], "invalidFilter");
    assert!(compared.body["detail"].as_str().unwrap().contains("custom extension"), "{}", compared.body);

    // Okta's full PUT replaces it, and leaves it out to remove it.
    body[custom] = json!({"role": "viewer"});
    let put = scim.put(&format!("/Users/{id}"), body.clone()).await;
    assert_eq!(put.body[custom], json!({"role": "viewer"}), "{}", put.body);
    // One that spells a name otherwise logs no change of it (names match ignoring case).
    body[custom] = json!({"Role": "viewer"});
    let put = scim.put(&format!("/Users/{id}"), body.clone()).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let (_, page) = app.get(&format!("/api/v1/provisioning-logs?scim_connection_id={}", scim.connection_id)).await;
    assert_eq!(page["data"][0]["operation"], "update", "{}", page["data"][0]);
    assert_eq!(page["data"][0]["reasons"], json!([]), "{}", page["data"][0]);
    assert_eq!(scim.get(&format!("/Users/{id}")).await.body[custom], json!({"Role": "viewer"}));
    body.as_object_mut().unwrap().remove(custom);
    body["schemas"] = json!([core]);
    let put = scim.put(&format!("/Users/{id}"), body.clone()).await;
    assert_eq!(put.status, StatusCode::OK);
    assert!(put.body.get(custom).is_none(), "{}", put.body);
    assert_eq!(put.body["schemas"], json!([core]));

    // At most 64 KiB of it per resource; a refused write changes nothing.
    let ops = json!([{"op": "add", "path": format!("{custom}:blob"), "value": "x".repeat(70_000)},
                     {"op": "replace", "path": "title", "value": "Big"}]);
    let refused = scim.patch(&format!("/Users/{id}"), patch_op(ops)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.body["scimType"], "invalidValue");
    assert!(
        refused.body["detail"].as_str().unwrap().contains("at most 65536 are kept per resource"),
        "{}",
        refused.body
    );
    assert!(scim.get(&format!("/Users/{id}")).await.body.get("title").is_none());

    // Groups keep theirs too, beside a membership change in the same PATCH.
    let gx = "urn:example:acme:2.0:Group";
    let group = scim.post("/Groups", json!({"displayName": "Ops", gx: {"costCode": "7"}})).await;
    assert_eq!(group.status, StatusCode::CREATED, "{}", group.body);
    assert_eq!(group.body[gx], json!({"costCode": "7"}));
    let gid = group.body["id"].as_str().unwrap().to_string();
    let ops = json!([{"op": "Add", "path": "members", "value": [{"value": id}]},
                     {"op": "Replace", "path": format!("{gx}:costCode"), "value": "8"}]);
    let patched = scim.patch(&format!("/Groups/{gid}"), patch_op(ops)).await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body[gx], json!({"costCode": "8"}), "{}", patched.body);
    assert_eq!(patched.body["members"][0]["value"], json!(id), "{}", patched.body);
    assert_eq!(scim.get(&format!("/Groups/{gid}")).await.body[gx], json!({"costCode": "8"}));
    let (_, managed) = app.get(&format!("/api/v1/scim-connections/{}/groups/{gid}", scim.connection_id)).await;
    assert_eq!(managed[gx], json!({"costCode": "8"}), "{managed}");
    let query = format!("scim_connection_id={}&type=group.updated", scim.connection_id);
    let (events, _) = read_all(&app, &query, 100, 1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["data"]["changed"], json!([format!("{gx}:costCode")]), "{events:?}");
    // A group's PUT is held to the same limits.
    let many: serde_json::Map<String, serde_json::Value> = (0..201).map(|i| (format!("a{i}"), json!(i))).collect();
    let refused = scim.put(&format!("/Groups/{gid}"), json!({"displayName": "Ops", gx: many})).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(
        refused.body["detail"].as_str().unwrap().contains("at most 200 custom extension attributes"),
        "{}",
        refused.body
    );
}

/// A value filter on a custom extension's attribute is refused: there is
/// no schema to compare its values by, and ignoring a removal by filter
/// would leave the value (a role) in place.
#[tokio::test]
async fn a_value_filter_on_a_custom_attribute_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let custom = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User";
    let mut body = user("filter@acme.com");
    body[custom] = json!({"roles": [{"value": "admin"}, {"value": "viewer"}]});
    let id = scim.create_user(body).await;
    let ops = json!([{"op": "remove", "path": format!("{custom}:roles[value eq \"admin\"]")},
                     {"op": "replace", "path": "active", "value": false}]);
    let refused = scim.patch(&format!("/Users/{id}"), patch_op(ops)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert_eq!(refused.body["scimType"], "invalidPath");
    let detail = refused.body["detail"].as_str().unwrap();
    assert!(
        detail.starts_with(&format!("Operations[0]: a value filter cannot select values of \"{custom}:roles\"")),
        "{detail}"
    );
    let read = scim.get(&format!("/Users/{id}")).await.body;
    assert_eq!(read[custom]["roles"].as_array().unwrap().len(), 2, "{read}");
    assert_eq!(read["active"], true);
    // The whole attribute written instead is applied.
    let ops = json!([{"op": "replace", "path": format!("{custom}:roles"), "value": [{"value": "viewer"}]}]);
    let patched = scim.patch(&format!("/Users/{id}"), patch_op(ops)).await;
    assert_eq!(patched.body[custom], json!({"roles": [{"value": "viewer"}]}), "{}", patched.body);
}

#[tokio::test]
async fn management_api_lists_a_connections_users_and_groups() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let id = scim.create_user(user("mgmt@acme.com")).await;
    let g = scim.post("/Groups", json!({"displayName": "Admins", "members": [{"value": id}]})).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, users) = app.get(&format!("/api/v1/scim-connections/{}/users", scim.connection_id)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(users["data"][0]["userName"], "mgmt@acme.com");
    assert_eq!(users["data"][0]["groups"][0]["value"], g);
    let (status, one) = app.get(&format!("/api/v1/scim-connections/{}/users/{id}", scim.connection_id)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["id"], id);
    let (_, groups) = app.get(&format!("/api/v1/scim-connections/{}/groups", scim.connection_id)).await;
    assert_eq!(groups["data"][0]["displayName"], "Admins");
    let (status, _) = app.get(&format!("/api/v1/scim-connections/{}/groups/{g}", scim.connection_id)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.get("/api/v1/scim-connections/nope/users").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["type"], "ScimConnectionNotFound");
}

#[tokio::test]
async fn management_user_list_filters_and_lists_deleted_users_on_request() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let mut body = user("Filter.A@acme.com");
    body["externalId"] = json!("ext-a");
    let a = scim.create_user(body).await;
    let b = scim.create_user(user("filter.b@acme.com")).await;
    let c = scim.create_user(user("filter.c@acme.com")).await;
    let group = |name: &str, member: &str| {
        let scim = &scim;
        let body = json!({"displayName": name, "members": [{"value": member}]});
        async move { scim.post("/Groups", body).await.body["id"].as_str().unwrap().to_string() }
    };
    let (admins, staff, untouched) = (group("Admins", &a).await, group("Staff", &c).await, group("Others", &a).await);
    // What changes from here on is an hour later.
    app.clock.advance(chrono::Duration::hours(1));
    let since = (chrono::Utc::now() + chrono::Duration::minutes(30)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let removed = patch_op(json!([{"op": "remove", "path": format!("members[value eq \"{a}\"]")}]));
    assert_eq!(scim.patch(&format!("/Groups/{admins}"), removed).await.status.as_u16() / 100, 2);
    assert_eq!(
        scim.patch(&format!("/Users/{b}"), patch_op(json!([{"op": "replace", "path": "active", "value": false}])))
            .await
            .status,
        200
    );
    assert_eq!(scim.delete(&format!("/Users/{c}")).await.status, 204);
    let app = &app;
    let list = |q: &str| {
        let path = format!("/api/v1/scim-connections/{}/users{q}", scim.connection_id);
        async move {
            let (status, body) = app.get(&path).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            body["data"].as_array().unwrap().clone()
        }
    };
    let ids =
        |users: &[serde_json::Value]| users.iter().map(|u| u["id"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(ids(&list("").await), sorted(vec![a.clone(), b.clone()]), "deleted users are left out");
    assert_eq!(ids(&list("?active=false").await), [b.as_str()]);
    assert_eq!(ids(&list("?active=true").await), [a.as_str()]);
    assert_eq!(
        ids(&list("?user_name=FILTER.a%40ACME.com").await),
        [a.as_str()],
        "userName compared case-insensitively"
    );
    assert_eq!(ids(&list("?external_id=ext-a").await), [a.as_str()]);
    assert!(list("?external_id=EXT-A").await.is_empty(), "externalId is case-exact");
    let all = list("?include_deleted=true").await;
    assert_eq!(ids(&all), sorted(vec![a.clone(), b.clone(), c.clone()]));
    for u in &all {
        assert_eq!(u.get("deleted_at").is_some(), u["id"] == c.as_str(), "{u}");
    }
    // Deleted while active: listed, and counted, as not active.
    let deleted = all.iter().find(|u| u["id"] == c.as_str()).unwrap();
    assert_eq!(deleted["active"], false, "{deleted}");
    assert_eq!(ids(&list("?active=false&include_deleted=true").await), sorted(vec![b.clone(), c.clone()]));
    assert_eq!(ids(&list("?active=true&include_deleted=true").await), [a.as_str()]);
    // A poller's question: who changed since I last looked, deletions included.
    let changed = list(&format!("?updated_since={since}&include_deleted=true")).await;
    assert_eq!(ids(&changed), sorted(vec![b.clone(), c.clone()]));
    assert_eq!(ids(&list(&format!("?updated_since={since}")).await), [b.as_str()]);
    // A membership change dates the group, not its members: a poller reads the groups too.
    let (status, groups) =
        app.get(&format!("/api/v1/scim-connections/{}/groups?updated_since={since}", scim.connection_id)).await;
    assert_eq!(status, StatusCode::OK, "{groups}");
    // Admins lost a member to a group write, Staff its member to that user's deletion.
    let mut changed = vec![admins.clone(), staff.clone()];
    changed.sort();
    assert_eq!(ids(groups["data"].as_array().unwrap()), changed, "not {untouched}: {groups}");
    let (status, body) =
        app.get(&format!("/api/v1/scim-connections/{}/groups?updated_since=soon", scim.connection_id)).await;
    assert_eq!((status, invalid_fields(&body)), (StatusCode::BAD_REQUEST, vec!["updated_since".to_string()]));
    assert_eq!(ids(&list("?include_deleted=true&limit=1").await).len(), 1);

    for (query, field) in [
        ("?active=no", "active"),
        ("?include_deleted=1", "include_deleted"),
        ("?updated_since=yesterday", "updated_since"),
        ("?activ=false", "activ"),
    ] {
        let (status, body) = app.get(&format!("/api/v1/scim-connections/{}/users{query}", scim.connection_id)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(invalid_fields(&body), [field], "{body}");
    }
}

#[tokio::test]
async fn management_lists_refuse_query_parameters_they_do_not_take() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let conn = &scim.connection_id;
    for (path, field, takes) in [
        (format!("/api/v1/scim-connections/{conn}/groups?display_name=x"), "display_name", "after, limit"),
        ("/api/v1/scim-connections?customer=acme".to_string(), "customer", "customer_id, after, limit"),
        ("/api/v1/oidc-clients?customerId=acme".to_string(), "customerId", "customer_id, after, limit"),
        ("/api/v1/login-events?status=failed".to_string(), "status", "outcome"),
        ("/api/v1/provisioning-logs?op=create".to_string(), "op", "operation"),
        ("/api/v1/audit-events?target=x".to_string(), "target", "target_type"),
    ] {
        let (status, body) = app.get(&path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(invalid_fields(&body), [field], "{body}");
        assert!(body.to_string().contains(takes), "{path}: the answer names what the endpoint takes: {body}");
        if takes.contains("after") != body.to_string().contains("after") {
            panic!("{path}: a list kept newest first does not take after: {body}");
        }
    }
    // What they do take still works.
    let (status, _) = app.get(&format!("/api/v1/provisioning-logs?scim_connection_id={conn}&limit=5")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn user_name_and_external_id_lookups_use_an_index() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    for i in 0..50 {
        scim.create_user(user(&format!("idx{i}@acme.com"))).await;
    }
    // Each lookup's column must be in the index condition (SQLite: "SEARCH u USING
    // INDEX … (scim_connection_id=? AND col=?)"; PostgreSQL: "Index Cond: … (col = …)"),
    // not applied as a filter while walking the connection's users in id order.
    for (filter, column) in [
        ("userName eq \"idx7@acme.com\"", "user_name_lower"),
        ("externalId eq \"abc\"", "external_id"),
        ("id eq \"x\"", "id"),
    ] {
        let f = tandem_scim::filter::parse_filter(filter).unwrap();
        let conn = scim.connection_id.clone();
        let plan = app
            .state
            .store
            .read_blocking(move |c| {
                tandem_store::scim::query::search_plan(
                    c,
                    "scim_users",
                    "u",
                    tandem_scim::schema::ResourceType::User,
                    tandem_store::scim::users::LIVE,
                    &conn,
                    &f,
                )
            })
            .unwrap()
            .unwrap();
        let right_index = plan.contains(&format!("({column}=?"))
            || plan.contains(&format!("AND {column}=?"))
            || plan.lines().any(|l| l.contains("Index Cond") && l.contains(&format!("({column} = ")));
        assert!(right_index, "{filter} is not answered from its index:\n{plan}");
    }
}

#[tokio::test]
async fn scim_paths_route_by_method_and_segment() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let id = scim.create_user(user("route@acme.com")).await;
    let error = "urn:ietf:params:scim:api:messages:2.0:Error";

    // Every endpoint answers its methods; the others get SCIM's 405.
    for (method, path, allow) in [
        (Method::PUT, "/Users".to_string(), "GET, POST"),
        (Method::POST, format!("/Users/{id}"), "GET, PUT, PATCH, DELETE"),
        (Method::GET, "/Users/.search".to_string(), "POST"),
        (Method::DELETE, "/Groups".to_string(), "GET, POST"),
        (Method::GET, "/.search".to_string(), "POST"),
        (Method::POST, "/ServiceProviderConfig".to_string(), "GET"),
    ] {
        let r = scim.send(method.clone(), &path, None).await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_eq!(r.headers.get("allow").and_then(|v| v.to_str().ok()), Some(allow), "{method} {path}");
        assert_eq!(r.body["schemas"][0], error, "{method} {path}");
        assert!(r.body["detail"].as_str().unwrap().contains("is not supported on"), "{}", r.body);
    }
    // Paths that name no endpoint: SCIM's 404 saying which path (a
    // trailing slash or a lower-case endpoint name is tidied first).
    for path in [&format!("/Users/{id}/extra"), "/Bulk/x", "/Nope/x", "", "/"] {
        let r = scim.get(path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path:?}");
        assert_eq!(r.body["schemas"][0], error, "{path:?}");
        assert!(r.body["detail"].as_str().unwrap().starts_with("no SCIM endpoint GET "), "{}", r.body);
    }
    // A query string with broken escapes is read as it comes: a filter made of it is SCIM's invalidFilter.
    for query in ["filter=%ZZ", "filter=%FF%FE"] {
        let r = scim.get(&format!("/Users?{query}")).await;
        assert_eq!((r.status, &r.body["scimType"]), (StatusCode::BAD_REQUEST, &json!("invalidFilter")), "{query}");
        assert_eq!(r.body["schemas"][0], error, "{query}");
    }
    // The endpoints RFC 7644 defines that are not served: 501 (§3.11 for /Me).
    for (method, path) in
        [(Method::GET, "/Me"), (Method::PATCH, "/me/x"), (Method::POST, "/Bulk"), (Method::POST, "/bulk")]
    {
        let r = scim.send(method.clone(), path, None).await;
        assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED, "{method} {path}");
        assert_eq!(r.body["schemas"][0], error, "{path:?}");
        assert!(r.body["detail"].as_str().unwrap().contains("not supported"), "{}", r.body);
    }
    // `.search` is the search endpoint, not a user id; an id's escapes are decoded.
    let found = scim.post("/Users/.search", json!({"filter": "userName eq \"route@acme.com\""})).await;
    assert_eq!(found.status, StatusCode::OK);
    assert_eq!(found.body["Resources"][0]["id"], id.as_str());
    let escaped = id.replace('-', "%2D");
    let r = scim.get(&format!("/Users/{escaped}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["id"], id.as_str());
    let r = scim.get("/ResourceTypes/Group").await;
    assert_eq!(r.body["name"], "Group");
    assert_eq!(scim.get(&format!("/users/{id}/")).await.body["id"], id.as_str());
    // The connection id in the path is the one the key must belong to.
    let other = app.scim().await;
    let r = scim.send_with_key(Method::GET, "/Users", None, &other.key).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn members_sent_without_display_text_show_their_users_and_groups_names() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let mut named = user("ada@acme.com");
    named["displayName"] = json!("Ada Lovelace");
    let ada = scim.create_user(named).await;
    let bob = scim.create_user(user("bob@acme.com")).await;
    let inner = scim
        .post("/Groups", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Inner"}))
        .await;
    let inner = inner.body["id"].as_str().unwrap().to_string();
    let outer = scim
        .post(
            "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Outer",
                   "members": [{"value": ada}, {"value": bob}, {"value": inner}, {"value": bob, "display": "dup"}]}),
        )
        .await;
    assert_eq!(outer.status, StatusCode::CREATED, "{}", outer.body);
    let gid = outer.body["id"].as_str().unwrap().to_string();
    for doc in [outer.body, scim.get(&format!("/Groups/{gid}")).await.body] {
        let members = doc["members"].as_array().unwrap();
        let shown =
            |id: &str| members.iter().find(|m| m["value"] == id).map(|m| (m["display"].clone(), m["type"].clone()));
        assert_eq!(members.len(), 3, "{doc}");
        assert_eq!(shown(&ada), Some((json!("Ada Lovelace"), json!("User"))));
        assert_eq!(shown(&bob), Some((json!("bob@acme.com"), json!("User"))));
        assert_eq!(shown(&inner), Some((json!("Inner"), json!("Group"))));
    }
    // A renamed user shows its new name.
    let r = scim
        .patch(
            &format!("/Users/{ada}"),
            patch_op(json!([{"op": "replace", "path": "displayName", "value": "Ada King"}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let doc = scim.get(&format!("/Groups/{gid}")).await.body;
    assert!(
        doc["members"].as_array().unwrap().iter().any(|m| m["value"] == ada.as_str() && m["display"] == "Ada King"),
        "{doc}"
    );
}

/// A display text a client sent is cleared by a remove of it, by a PUT that
/// sends the member without one and by a replace of the members (RFC 7644
/// §3.5.2.2, §3.5.1, §3.5.2.3): the member then shows its user's name again.
#[tokio::test]
async fn a_members_display_text_can_be_cleared() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let u = scim.create_user(user("cleared@acme.com")).await;
    let shown = |doc: &serde_json::Value| member_display(doc, &u);
    let clears = [
        ("PATCH", json!([{"op": "remove", "path": format!("members[value eq \"{u}\"].display")}])),
        ("PUT", json!({"displayName": "Cleared", "members": [{"value": u}]})),
        ("PATCH", json!([{"op": "replace", "path": "members", "value": [{"value": u}]}])),
    ];
    for (i, (method, body)) in clears.into_iter().enumerate() {
        let gid = scim
            .create_group(
                json!({"displayName": format!("Cleared {i}"), "members": [{"value": u, "display": "Old Name"}]}),
            )
            .await;
        let path = format!("/Groups/{gid}");
        assert_eq!(shown(&scim.get(&path).await.body), Some(json!("Old Name")));
        let r = if method == "PUT" {
            let mut body = body;
            body["displayName"] = json!(format!("Cleared {i}"));
            scim.put(&path, body).await
        } else {
            scim.patch(&path, patch_op(body)).await
        };
        assert_eq!(r.status, StatusCode::OK, "{method} {}", r.body);
        assert_eq!(shown(&r.body), Some(json!("cleared@acme.com")), "{method} answer {}", r.body);
        assert_eq!(shown(&scim.get(&path).await.body), Some(json!("cleared@acme.com")), "{method}");
        let old = scim.filter_ids("Groups", "members.display eq \"Old Name\"").await;
        assert!(!old.contains(&gid), "{method}: {old:?}");
    }
}

/// A PATCH whose path is the Group schema's URN is read like one without a
/// path: the `members` in its value are added, or replace the members.
#[tokio::test]
async fn a_patch_whose_path_is_the_group_urn_changes_members() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let a = scim.create_user(user("urn-a@acme.com")).await;
    let b = scim.create_user(user("urn-b@acme.com")).await;
    let gid = scim.create_group(json!({"displayName": "By URN", "members": [{"value": a}]})).await;
    let path = format!("/Groups/{gid}");
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    let urn = "urn:ietf:params:scim:schemas:core:2.0:Group";
    let r =
        scim.patch(&path, patch_op(json!([{"op": "add", "path": urn, "value": {"members": [{"value": b}]}}]))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(member_ids(&r.body), both);
    assert_eq!(member_ids(&scim.get(&path).await.body), both);
    assert_eq!(scim.filter_ids("Groups", &format!("members eq \"{b}\"")).await, vec![gid.clone()]);
    let r = scim.patch(&path, patch_op(json!([{"op": "replace", "path": urn, "value": {"members": []}}]))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(member_ids(&scim.get(&path).await.body), Vec::<String>::new());
    assert!(scim.filter_ids("Groups", &format!("members eq \"{a}\"")).await.is_empty());
}

#[tokio::test]
async fn a_member_added_while_it_is_deleted_is_never_left_in_the_group() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let gid =
        scim.post("/Groups", json!({"displayName": "Racing members"})).await.body["id"].as_str().unwrap().to_string();
    for round in 0..10 {
        let uid = scim.create_user(user(&format!("gone{round}@acme.com"))).await;
        let ops = json!([{"op": "add", "path": "members", "value": [{"value": uid}]}]);
        let (group_path, user_path) = (format!("/Groups/{gid}"), format!("/Users/{uid}"));
        let add = scim.patch(&group_path, patch_op(ops));
        let delete = scim.delete(&user_path);
        let (added, deleted) = tokio::join!(add, delete);
        assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
        // Added before the delete (and removed by it), or refused as unknown after it.
        assert!(
            added.status == StatusCode::OK || added.status == StatusCode::BAD_REQUEST,
            "{}: {}",
            added.status,
            added.body
        );
        let got = scim.get(&format!("/Groups/{gid}")).await.body;
        let members = got["members"].as_array().cloned().unwrap_or_default();
        assert!(members.iter().all(|m| m["value"] != uid.as_str()), "round {round}: {got}");
    }
}

#[tokio::test]
async fn groups_made_members_of_each_other_at_once_both_land() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    for round in 0..8 {
        let mut ids = Vec::new();
        for name in ["A", "B"] {
            let created = scim.post("/Groups", json!({"displayName": format!("{name}{round}")})).await;
            assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
            ids.push(created.body["id"].as_str().unwrap().to_string());
        }
        // Odd rounds rename the group in the same PATCH (as Okta does).
        let add = |group: &str, member: &str| {
            let mut ops = vec![json!({"op": "add", "path": "members", "value": [{"value": member}]})];
            if round % 2 == 1 {
                ops.push(json!({"op": "replace", "path": "displayName", "value": format!("Renamed {group}")}));
            }
            let (path, ops) = (format!("/Groups/{group}"), json!(ops));
            let s = scim.clone();
            async move { s.patch(&path, patch_op(ops)).await }
        };
        // Each write holds its own group and needs the other as a member.
        let (a, b) = tokio::join!(add(&ids[0], &ids[1]), add(&ids[1], &ids[0]));
        assert_eq!((a.status, b.status), (StatusCode::OK, StatusCode::OK), "round {round}: {} / {}", a.body, b.body);
        for (group, member) in [(&ids[0], &ids[1]), (&ids[1], &ids[0])] {
            let got = scim.get(&format!("/Groups/{group}")).await.body;
            let members: Vec<&str> =
                got["members"].as_array().unwrap().iter().map(|m| m["value"].as_str().unwrap()).collect();
            assert_eq!(members, [member.as_str()], "round {round}: {got}");
        }
    }
}

#[tokio::test]
async fn a_user_patch_does_not_wait_for_a_group_write_adding_the_user() {
    let app = TestApp::spawn().await;
    if app.state.store.backend() != "postgres" {
        return; // SQLite runs writes one at a time: there is nothing to wait for.
    }
    let scim = app.scim().await;
    let uid = scim.create_user(user("held@acme.com")).await;
    // A group write adding the user, under way.
    let (release, group_write) = hold_group_write(&app, &scim.connection_id, "Held open", &[&uid]);
    let ops = json!([{"op": "replace", "path": "title", "value": "Engineer"}]);
    let path = format!("/Users/{uid}");
    let patch = scim.patch(&path, patch_op(ops));
    // Time enough for a request on a loaded machine; the group write holds on
    // until it is released below, so one that waited for it would not end.
    let patched = tokio::time::timeout(std::time::Duration::from_secs(30), patch).await;
    release.send(()).unwrap();
    group_write.join().unwrap().unwrap();
    let patched = patched.expect("the user PATCH waited for the group write to end");
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["title"], "Engineer");
}

#[tokio::test]
async fn a_group_renamed_while_a_group_write_adds_it_as_a_member_does_not_wait() {
    let app = TestApp::spawn().await;
    if app.state.store.backend() != "postgres" {
        return; // SQLite runs writes one at a time: there is nothing to wait for.
    }
    let scim = app.scim().await;
    let inner = scim.post("/Groups", json!({"displayName": "Inner"})).await.body["id"].as_str().unwrap().to_string();
    // A group write nesting the group, under way.
    let (release, group_write) = hold_group_write(&app, &scim.connection_id, "Outer", &[&inner]);
    // A rename changes a uniquely indexed column: it must not take the lock
    // a member's delete takes.
    let ops = json!([{"op": "replace", "path": "displayName", "value": "Inner, renamed"}]);
    let path = format!("/Groups/{inner}");
    let patch = scim.patch(&path, patch_op(ops));
    // Time enough for a request on a loaded machine; the group write holds on
    // until it is released below, so one that waited for it would not end.
    let patched = tokio::time::timeout(std::time::Duration::from_secs(30), patch).await;
    release.send(()).unwrap();
    group_write.join().unwrap().unwrap();
    let patched = patched.expect("the rename waited for the group write to end");
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["displayName"], "Inner, renamed");
}

/// PostgreSQL refuses the NUL character in text and index entries over
/// ~2.7 kB: such values are refused up front with what is wrong, never a
/// 500, on both backends.
#[tokio::test]
async fn nul_characters_and_overlong_names_are_refused_with_what_is_wrong() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let uid = scim.create_user(user("kept@acme.com")).await;
    let r = scim.post("/Users", user("a\u{0}b@acme.com")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("holds the NUL character (U+0000)"), "{}", r.body);
    let mut created = user("ok@acme.com");
    created["name"] = json!({"givenName": "A\u{0}"});
    let r = scim.post("/Users", created).await;
    assert!(r.body["detail"].as_str().unwrap().contains("name.givenName"), "{}", r.body);
    let gid = scim.post("/Groups", json!({"displayName": "G"})).await.body["id"].as_str().unwrap().to_string();
    let ops = json!([{"op": "add", "path": "members", "value": [{"value": "x\u{0}", "display": "y"}]}]);
    let r = scim.patch(&format!("/Groups/{gid}"), patch_op(ops)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("Operations[0].value[0].value"), "{}", r.body);
    for path in [
        "/Users/a%00b",
        "/Groups/a%00b",
        "/Users?filter=userName%20eq%20%22a%00b%22",
        "/Users/%%30%30",
        "/Groups/a%0%30b",
    ] {
        let r = scim.get(path).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.body);
        assert_eq!(r.body["scimType"], "invalidValue", "{path}: {}", r.body);
    }
    // Written as a JSON escape inside a filter string, in a query or a PATCH path.
    let r = scim.get("/Users?filter=userName%20eq%20%22a%5Cu0000b%22").await;
    assert_eq!((r.status, &r.body["scimType"]), (StatusCode::BAD_REQUEST, &json!("invalidFilter")), "{}", r.body);
    let ops = json!([{"op": "remove", "path": "members[value eq \"x\\u0000\"]"}]);
    let r = scim.patch(&format!("/Groups/{gid}"), patch_op(ops)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    // Names a resource is looked up by are at most 1,024 bytes.
    let long: String = (0..1100).map(|i| char::from(b'a' + (i * 7 % 26) as u8)).collect();
    let r = scim.post("/Users", user(&format!("{long}@acme.com"))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("at most 1024"), "{}", r.body);
    let r = scim.post("/Groups", json!({"displayName": long})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let ops = json!([{"op": "replace", "path": "externalId", "value": long}]);
    let r = scim.patch(&format!("/Users/{uid}"), patch_op(ops)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = scim.post("/Users", user(&format!("{}@acme.com", &long[..1000]))).await;
    assert_eq!(r.status, StatusCode::CREATED, "1,010 bytes are allowed: {}", r.body);
    // A resource's other attributes are bounded together (64 KiB), by create, PUT and PATCH alike.
    let huge = "x".repeat(70 * 1024);
    let mut big = user("big@acme.com");
    big["displayName"] = json!(huge);
    let r = scim.post("/Users", big.clone()).await;
    assert_eq!((r.status, &r.body["scimType"]), (StatusCode::BAD_REQUEST, &json!("invalidValue")), "{}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("(displayName 71691)"), "{}", r.body);
    big["userName"] = json!(format!("{}@acme.com", &long[..900]));
    let r = scim.put(&format!("/Users/{uid}"), big).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let ops = json!([{"op": "add", "path": "title", "value": huge}]);
    assert_eq!(scim.patch(&format!("/Users/{uid}"), patch_op(ops)).await.status, StatusCode::BAD_REQUEST);
    let ops = json!([{"op": "add", "path": "title", "value": "x".repeat(40 * 1024)}]);
    assert_eq!(scim.patch(&format!("/Users/{uid}"), patch_op(ops)).await.status, StatusCode::OK, "40 KiB are allowed");
    let r = scim.post("/Groups", json!({"displayName": "big", "externalId": huge})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
}

/// A group's reads are logged with the status sent, as a user's are: the
/// 304 as 304, and a refused projection as that refusal only.
#[tokio::test]
async fn group_reads_are_logged_with_the_status_sent() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let gid = scim.post("/Groups", json!({"displayName": "Logged"})).await.body["id"].as_str().unwrap().to_string();
    let etag = scim.get(&format!("/Groups/{gid}")).await.body["meta"]["version"].as_str().unwrap().to_string();
    let r = scim
        .http
        .get(format!("{}/Groups/{gid}", scim.base))
        .bearer_auth(&scim.key)
        .header("if-none-match", etag.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(
        scim.get(&format!("/Groups/{gid}?attributes=members.value.extra")).await.status,
        StatusCode::BAD_REQUEST
    );
    let seen = logged(&app, &scim, &gid).await;
    assert_eq!(reads(&seen), [304, 200], "{seen:?}");
    assert_eq!(seen.first().map(|(op, s)| (op.as_str(), *s)), Some(("fail", 400)), "{seen:?}");
}

/// A group cannot be a member of itself (its delete would then report the
/// membership leaving after the group was gone); other groups can.
#[tokio::test]
async fn a_group_is_no_member_of_itself() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let g = scim.post("/Groups", json!({"displayName": "Self"})).await;
    let gid = g.body["id"].as_str().unwrap().to_string();
    let other = scim.post("/Groups", json!({"displayName": "Other"})).await.body["id"].as_str().unwrap().to_string();
    let add = |id: &str| patch_op(json!([{"op": "add", "path": "members", "value": [{"value": id}]}]));
    let r = scim.patch(&format!("/Groups/{gid}"), add(&gid)).await;
    assert_eq!((r.status, &r.body["scimType"]), (StatusCode::BAD_REQUEST, &json!("invalidValue")), "{}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("member of itself"), "{}", r.body);
    let r = scim.put(&format!("/Groups/{gid}"), json!({"displayName": "Self", "members": [{"value": gid}]})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = scim.patch(&format!("/Groups/{gid}"), add(&other)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}
