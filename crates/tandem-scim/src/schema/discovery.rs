//! Discovery documents: `/Schemas` (RFC 7643 §7), `/ResourceTypes` (§6) and `/ServiceProviderConfig` (§5).

use serde_json::{json, Map, Value};

use super::enterprise::ENTERPRISE_USER;
use super::group::GROUP;
use super::model::{AttrType, AttributeDef, SchemaDef};
use super::resource_type::ResourceType;
use super::user::USER;
use super::{RESOURCE_TYPE_SCHEMA, SCHEMA_SCHEMA, SPC_SCHEMA};
use crate::resource::list_response;

/// The published schemas, in listing order.
static SCHEMAS: [&SchemaDef; 3] = [&USER, &ENTERPRISE_USER, &GROUP];

/// The resource types, in listing order.
const RESOURCE_TYPES: [ResourceType; 2] = [ResourceType::User, ResourceType::Group];

fn base(base_url: &str) -> &str {
    base_url.trim_end_matches('/')
}

fn attribute_json(def: &AttributeDef) -> Value {
    let mut out = Map::new();
    out.insert("name".into(), def.name.into());
    out.insert("type".into(), def.ty.as_str().into());
    out.insert("multiValued".into(), def.multi_valued.into());
    out.insert("description".into(), def.description.into());
    out.insert("required".into(), def.required.into());
    out.insert("caseExact".into(), def.case_exact.into());
    out.insert("mutability".into(), def.mutability.as_str().into());
    out.insert("returned".into(), def.returned.as_str().into());
    out.insert("uniqueness".into(), def.uniqueness.as_str().into());
    if !def.canonical_values.is_empty() {
        out.insert("canonicalValues".into(), json!(def.canonical_values));
    }
    if def.ty == AttrType::Reference {
        out.insert("referenceTypes".into(), json!(def.reference_types));
    }
    if def.ty == AttrType::Complex {
        let subs: Vec<Value> = def.sub_attributes.iter().map(attribute_json).collect();
        out.insert("subAttributes".into(), Value::Array(subs));
    }
    Value::Object(out)
}

fn one_schema_json(schema: &SchemaDef, base_url: &str) -> Value {
    let attributes: Vec<Value> = schema.attributes.iter().map(attribute_json).collect();
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": schema.id,
        "name": schema.name,
        "description": schema.description,
        "attributes": attributes,
        "meta": {
            "resourceType": "Schema",
            "location": format!("{}/Schemas/{}", base(base_url), schema.id),
        }
    })
}

/// The `/Schemas` ListResponse with User, Enterprise User and Group in RFC 7643 §7 form.
pub fn schemas_json(base_url: &str) -> Value {
    let resources: Vec<Value> = SCHEMAS.iter().map(|schema| one_schema_json(schema, base_url)).collect();
    list_response(resources.len() as u64, 1, resources)
}

/// One schema document by URN (ignoring case), or `None` when unknown.
pub fn schema_json(id: &str, base_url: &str) -> Option<Value> {
    SCHEMAS.iter().find(|schema| schema.id.eq_ignore_ascii_case(id)).map(|schema| one_schema_json(schema, base_url))
}

fn one_resource_type_json(rt: ResourceType, base_url: &str) -> Value {
    let mut out = json!({
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": rt.name(),
        "name": rt.name(),
        "endpoint": rt.endpoint(),
        "description": rt.core_schema().description,
        "schema": rt.core_schema().id,
        "meta": {
            "resourceType": "ResourceType",
            "location": format!("{}/ResourceTypes/{}", base(base_url), rt.name()),
        }
    });
    let extensions: Vec<Value> =
        rt.extensions().iter().map(|ext| json!({"schema": ext.id, "required": false})).collect();
    if let (false, Some(map)) = (extensions.is_empty(), out.as_object_mut()) {
        map.insert("schemaExtensions".into(), Value::Array(extensions));
    }
    out
}

/// The `/ResourceTypes` ListResponse: User (with the optional Enterprise extension) and Group.
pub fn resource_types_json(base_url: &str) -> Value {
    let resources: Vec<Value> = RESOURCE_TYPES.iter().map(|rt| one_resource_type_json(*rt, base_url)).collect();
    list_response(resources.len() as u64, 1, resources)
}

/// One resource type document by name (`User`/`Group`, ignoring case), or `None` when unknown.
pub fn resource_type_json(name: &str, base_url: &str) -> Option<Value> {
    RESOURCE_TYPES
        .iter()
        .find(|rt| rt.name().eq_ignore_ascii_case(name))
        .map(|rt| one_resource_type_json(*rt, base_url))
}

/// The settings advertised in `/ServiceProviderConfig`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceProviderConfig {
    /// Largest number of resources one query returns (`filter.maxResults`).
    pub max_filter_results: u32,
    /// Largest request body accepted, in bytes (`bulk.maxPayloadSize`).
    pub max_payload_bytes: u64,
    /// Where the human documentation lives, if anywhere.
    pub documentation_uri: Option<String>,
}

/// The RFC 7643 §5 document: PATCH, filtering and ETags supported; bulk, sorting and password change not.
pub fn service_provider_config_json(cfg: &ServiceProviderConfig, base_url: &str) -> Value {
    let mut out = json!({
        "schemas": [SPC_SCHEMA],
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": cfg.max_payload_bytes},
        "filter": {"supported": true, "maxResults": cfg.max_filter_results},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication with a bearer token in the Authorization header (Authorization: Bearer <token>).",
            "specUri": "https://www.rfc-editor.org/info/rfc6750",
            "primary": true
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{}/ServiceProviderConfig", base(base_url)),
        }
    });
    if let (Some(uri), Some(map)) = (&cfg.documentation_uri, out.as_object_mut()) {
        map.insert("documentationUri".into(), Value::from(uri.as_str()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, LIST_RESPONSE, USER_SCHEMA};

    const BASE: &str = "https://sso.example.com/scim/v2/";

    #[test]
    fn schemas_listing_has_three_schemas_with_locations() {
        let doc = schemas_json(BASE);
        assert_eq!(doc["schemas"][0], LIST_RESPONSE);
        assert_eq!(doc["totalResults"], 3);
        let ids: Vec<_> = doc["Resources"].as_array().unwrap().iter().map(|r| r["id"].clone()).collect();
        assert_eq!(ids, [USER_SCHEMA, ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA]);
        assert_eq!(
            doc["Resources"][0]["meta"]["location"],
            format!("https://sso.example.com/scim/v2/Schemas/{USER_SCHEMA}")
        );
        assert_eq!(doc["Resources"][0]["meta"]["resourceType"], "Schema");
    }

    #[test]
    fn schema_document_describes_attributes_in_rfc_form() {
        let doc = schema_json(USER_SCHEMA, BASE).unwrap();
        let attrs = doc["attributes"].as_array().unwrap();
        let user_name = attrs.iter().find(|a| a["name"] == "userName").unwrap();
        assert_eq!(user_name["type"], "string");
        assert_eq!(user_name["required"], true);
        assert_eq!(user_name["uniqueness"], "server");
        let emails = attrs.iter().find(|a| a["name"] == "emails").unwrap();
        assert_eq!(emails["multiValued"], true);
        assert_eq!(emails["subAttributes"].as_array().unwrap().len(), 4);
        let profile = attrs.iter().find(|a| a["name"] == "profileUrl").unwrap();
        assert_eq!(profile["referenceTypes"][0], "external");
        assert!(attrs.iter().all(|a| a["name"] != "id"));
    }

    #[test]
    fn schema_lookup_ignores_case_and_rejects_unknown() {
        assert!(schema_json(&GROUP_SCHEMA.to_uppercase(), BASE).is_some());
        assert!(schema_json("urn:example:nope", BASE).is_none());
    }

    #[test]
    fn user_resource_type_lists_optional_enterprise_extension() {
        let doc = resource_type_json("user", BASE).unwrap();
        assert_eq!(doc["endpoint"], "/Users");
        assert_eq!(doc["schema"], USER_SCHEMA);
        assert_eq!(doc["schemaExtensions"][0]["schema"], ENTERPRISE_USER_SCHEMA);
        assert_eq!(doc["schemaExtensions"][0]["required"], false);
        assert_eq!(doc["meta"]["location"], "https://sso.example.com/scim/v2/ResourceTypes/User");
    }

    #[test]
    fn resource_types_listing_has_user_and_group() {
        let doc = resource_types_json(BASE);
        assert_eq!(doc["totalResults"], 2);
        assert_eq!(doc["Resources"][1]["id"], "Group");
        assert!(doc["Resources"][1].get("schemaExtensions").is_none());
        assert!(resource_type_json("Widget", BASE).is_none());
    }

    #[test]
    fn service_provider_config_advertises_patch_filter_etag_but_not_bulk() {
        let cfg = ServiceProviderConfig {
            max_filter_results: 200,
            max_payload_bytes: 1_048_576,
            documentation_uri: Some("https://tandem.example/docs".into()),
        };
        let doc = service_provider_config_json(&cfg, BASE);
        assert_eq!(doc["schemas"][0], SPC_SCHEMA);
        assert_eq!(doc["patch"]["supported"], true);
        assert_eq!(doc["bulk"], json!({"supported": false, "maxOperations": 0, "maxPayloadSize": 1_048_576}));
        assert_eq!(doc["filter"], json!({"supported": true, "maxResults": 200}));
        assert_eq!(doc["changePassword"]["supported"], false);
        assert_eq!(doc["sort"]["supported"], false);
        assert_eq!(doc["etag"]["supported"], true);
        assert_eq!(doc["authenticationSchemes"][0]["type"], "oauthbearertoken");
        assert_eq!(doc["documentationUri"], "https://tandem.example/docs");
        assert_eq!(doc["meta"]["location"], "https://sso.example.com/scim/v2/ServiceProviderConfig");
    }

    #[test]
    fn service_provider_config_omits_missing_documentation_uri() {
        let cfg = ServiceProviderConfig { max_filter_results: 1, max_payload_bytes: 1, documentation_uri: None };
        assert!(service_provider_config_json(&cfg, BASE).get("documentationUri").is_none());
    }
}
