//! AWS's services as Tally meets them: the product code a CUR line carries
//! (`line_item_product_code`, what the pool rules match), the name FOCUS and
//! Cost Explorer give the service (and the other names seen for it), and its
//! FOCUS 1.2 category, subcategory and usual resource type. The one table;
//! every reader, collector and export looks services up here.

/// One AWS service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwsService {
    /// The product code, e.g. `AmazonEC2`.
    pub code: &'static str,
    /// FOCUS `ServiceName` (and Cost Explorer's `SERVICE` name, where they agree).
    pub name: &'static str,
    /// Other names the service goes by: Cost Explorer's, earlier names.
    pub aliases: &'static [&'static str],
    /// FOCUS `ServiceCategory`.
    pub category: &'static str,
    /// FOCUS `ServiceSubcategory`.
    pub subcategory: &'static str,
    /// The usual FOCUS `ResourceType` of its lines.
    pub resource_type: &'static str,
}

const fn s(
    code: &'static str,
    name: &'static str,
    aliases: &'static [&'static str],
    category: &'static str,
    subcategory: &'static str,
    resource_type: &'static str,
) -> AwsService {
    AwsService { code, name, aliases, category, subcategory, resource_type }
}

/// Every AWS service Tally names.
pub const AWS_SERVICES: &[AwsService] = &[
    s("AmazonEC2", "Amazon Elastic Compute Cloud", &["Amazon Elastic Compute Cloud - Compute", "EC2 - Other"], "Compute", "Virtual Machines", "Instance"),
    s("AmazonEKS", "Amazon Elastic Kubernetes Service", &["Amazon Elastic Container Service for Kubernetes"], "Compute", "Containers", "Cluster"),
    s("AmazonECS", "Amazon Elastic Container Service", &[], "Compute", "Containers", "Cluster"),
    s("AWSLambda", "AWS Lambda", &[], "Compute", "Serverless Compute", "Function"),
    s("AmazonRDS", "Amazon Relational Database Service", &[], "Databases", "Relational Databases", "DB Instance"),
    s("AmazonElastiCache", "Amazon ElastiCache", &[], "Databases", "Caching", "Cache Node"),
    s("AmazonDynamoDB", "Amazon DynamoDB", &[], "Databases", "NoSQL Databases", "Table"),
    s("AWSELB", "Elastic Load Balancing", &["Amazon Elastic Load Balancing"], "Networking", "Application Networking", "Load Balancer"),
    s("AWSDataTransfer", "AWS Data Transfer", &[], "Networking", "Network Connectivity", "Data Transfer"),
    s("AmazonVPC", "Amazon Virtual Private Cloud", &[], "Networking", "Network Infrastructure", "VPC"),
    s("AmazonCloudFront", "Amazon CloudFront", &[], "Networking", "Content Delivery", "Distribution"),
    s("AmazonRoute53", "Amazon Route 53", &[], "Networking", "Network Routing", "Hosted Zone"),
    s("AmazonApiGateway", "Amazon API Gateway", &[], "Integration", "API Management", "API"),
    s("AmazonS3", "Amazon Simple Storage Service", &[], "Storage", "Object Storage", "Bucket"),
    s("AmazonCloudWatch", "Amazon CloudWatch", &["AmazonCloudWatch"], "Management and Governance", "Observability", "Metric"),
    s("AWSCloudTrail", "AWS CloudTrail", &[], "Management and Governance", "Compliance", "Trail"),
    s("AWSSystemsManager", "AWS Systems Manager", &[], "Management and Governance", "Other (Management and Governance)", "Resource"),
    s("AWSQueueService", "Amazon Simple Queue Service", &[], "Integration", "Messaging", "Queue"),
    s("AmazonSNS", "Amazon Simple Notification Service", &[], "Integration", "Messaging", "Topic"),
    s("awskms", "AWS Key Management Service", &[], "Security", "Other (Security)", "Key"),
];

/// The service of a product code.
pub fn aws_service(code: &str) -> Option<&'static AwsService> {
    AWS_SERVICES.iter().find(|s| s.code == code)
}

/// The product code of a service's name (FOCUS `ServiceName`, Cost
/// Explorer's `SERVICE`, or an earlier name).
pub fn aws_service_code(name: &str) -> Option<&'static str> {
    AWS_SERVICES.iter().find(|s| s.name == name || s.aliases.contains(&name)).map(|s| s.code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_and_alias_leads_back_to_one_code() {
        for s in AWS_SERVICES {
            assert_eq!(aws_service_code(s.name), Some(s.code), "{}", s.name);
            for a in s.aliases {
                assert_eq!(aws_service_code(a), Some(s.code), "{a}");
            }
            assert_eq!(aws_service(s.code), Some(s));
        }
        assert_eq!(aws_service_code("EC2 - Other"), Some("AmazonEC2"));
        assert_eq!(aws_service_code("Amazon Elastic Container Service for Kubernetes"), Some("AmazonEKS"));
        assert_eq!(aws_service_code("Some New Service"), None);
        let codes: std::collections::BTreeSet<_> = AWS_SERVICES.iter().map(|s| s.code).collect();
        assert_eq!(codes.len(), AWS_SERVICES.len(), "a code appears once");
    }
}
