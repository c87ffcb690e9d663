using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Schema;
using System.Text.Json.Serialization.Metadata;
using TcpFreeze.Cli;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>
/// The documented JSON schemas (docs/schema) against the types the command serialises: the same fields with the same
/// types, and the version the command writes. The output itself is checked against them by CliJsonOutputTests (root).
/// </summary>
public sealed class CliJsonSchemaTests
{
    // The command's own context, with nullable annotations respected, so a string field is "string", not "string or null".
    private static readonly CliJsonContext Context = new(new JsonSerializerOptions(CliJsonContext.Default.Options) { RespectNullableAnnotations = true });

    public static TheoryData<string> Documents => new() { "tcpfreeze-list.schema.json", "tcpfreeze-stats.schema.json" };

    private static JsonTypeInfo TypeOf(string schemaName) => schemaName switch
    {
        "tcpfreeze-list.schema.json" => Context.FrozenListJson,
        _ => Context.StatisticsJson,
    };

    [Theory]
    [MemberData(nameof(Documents))]
    public void The_documented_schema_has_exactly_the_fields_and_types_the_command_serialises(string schemaName)
    {
        JsonElement documented = DocumentedJson.Schema(schemaName);
        JsonElement exported = JsonDocument.Parse(JsonSchemaExporter.GetJsonSchemaAsNode(TypeOf(schemaName),
            new JsonSchemaExporterOptions { TreatNullObliviousAsNonNullable = true }).ToJsonString()).RootElement;
        var problems = new List<string>();
        Compare(documented, documented, exported, "$", problems);
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    [Theory]
    [MemberData(nameof(Documents))]
    public void The_version_the_command_writes_is_the_documented_one_and_every_field_is_required(string schemaName)
    {
        JsonElement documented = DocumentedJson.Schema(schemaName);
        Assert.Equal(CliJson.SchemaVersion, documented.GetProperty("properties").GetProperty("schemaVersion").GetProperty("const").GetInt32());
        // The command always writes every field (null where a value is absent): a reader may rely on each one.
        foreach (JsonElement schema in new[] { documented }.Concat(documented.TryGetProperty("$defs", out JsonElement defs) ? defs.EnumerateObject().Select(d => d.Value) : []))
            Assert.Equal(schema.GetProperty("properties").EnumerateObject().Select(p => p.Name).Order(),
                schema.GetProperty("required").EnumerateArray().Select(r => r.GetString()!).Order());
    }

    [Fact]
    public void A_document_the_command_writes_matches_its_schema_and_a_renamed_field_does_not()
    {
        var list = new FrozenListJson(CliJson.SchemaVersion, "/sys/fs/bpf/tcpfreeze/netns-4096",
            [new FrozenConnectionJson("198.18.0.1:8080", "198.18.0.2:40000", 3, null, false, new DirectionsJson(2, 1))],
            [new FrozenEndpointJson("0.0.0.0:8080", 0, 119.5, false)]);
        JsonElement written = JsonDocument.Parse(JsonSerializer.Serialize(list, CliJsonContext.Default.FrozenListJson)).RootElement;
        DocumentedJson.AssertMatches(written, "tcpfreeze-list.schema.json");

        // The check can fail: an undocumented field, a wrong type and a wrong version are each reported.
        JsonObject changed = JsonNode.Parse(written.GetRawText())!.AsObject();
        changed["schemaVersion"] = 2;
        changed["connections"]![0]!["peerDataDropped"] = 1;
        changed["endpoints"]![0]!["leaseSeconds"] = "119.5";
        List<string> problems = DocumentedJson.Problems(JsonDocument.Parse(changed.ToJsonString()).RootElement, DocumentedJson.Schema("tcpfreeze-list.schema.json"));
        Assert.Contains(problems, p => p.Contains("$.schemaVersion: 2 is not the documented constant 1"));
        Assert.Contains(problems, p => p.Contains("$.connections[0]: the field 'peerDataDropped' is not documented"));
        Assert.Contains(problems, p => p.Contains("$.endpoints[0].leaseSeconds: a string, documented as number or null"));
    }

    /// <summary>Walks the documented schema beside the exported one: the same properties, the same types, at every level.</summary>
    private static void Compare(JsonElement documented, JsonElement documentedRoot, JsonElement exported, string at, List<string> problems)
    {
        documented = DocumentedJson.Resolve(documented, documentedRoot);
        HashSet<string> exportedTypes = DocumentedJson.Types(exported);
        HashSet<string> documentedTypes = documented.TryGetProperty("const", out JsonElement constant)
            ? [DocumentedJson.TypeOf(constant)]
            : DocumentedJson.Types(documented);
        if (!exportedTypes.SetEquals(documentedTypes))
            problems.Add($"{at}: documented as {string.Join(" or ", documentedTypes.Order())}, serialised as {string.Join(" or ", exportedTypes.Order())}");
        if (exported.TryGetProperty("properties", out JsonElement exportedProperties))
        {
            JsonElement documentedProperties = documented.TryGetProperty("properties", out JsonElement p) ? p : default;
            var names = exportedProperties.EnumerateObject().Select(q => q.Name).ToHashSet();
            var documentedNames = documentedProperties.ValueKind == JsonValueKind.Object ? documentedProperties.EnumerateObject().Select(q => q.Name).ToHashSet() : [];
            foreach (string missing in names.Except(documentedNames))
                problems.Add($"{at}: the field '{missing}' is serialised but not documented");
            foreach (string extra in documentedNames.Except(names))
                problems.Add($"{at}: the field '{extra}' is documented but not serialised");
            foreach (string name in names.Intersect(documentedNames))
                Compare(documentedProperties.GetProperty(name), documentedRoot, exportedProperties.GetProperty(name), $"{at}.{name}", problems);
        }
        if (exported.TryGetProperty("items", out JsonElement exportedItems))
        {
            if (documented.TryGetProperty("items", out JsonElement documentedItems))
                Compare(documentedItems, documentedRoot, exportedItems, $"{at}[]", problems);
            else
                problems.Add($"{at}: an array whose items are not documented");
        }
    }
}
