using System.Text.Json;

namespace TcpFreeze.Tests.Infrastructure;

/// <summary>
/// Checks a JSON value against one of the documented schemas under docs/schema, strictly: the keywords those files
/// use (type, const, required, properties, items, minimum, local $ref) are enforced, and an object may hold no field
/// its schema does not document (the schema itself allows unknown fields, for readers of later versions; our own
/// output must not have any). Any other keyword in a schema is a failure, so a schema cannot say more than is checked.
/// </summary>
public static class DocumentedJson
{
    private static readonly HashSet<string> Known = ["$schema", "$id", "$defs", "title", "description", "type", "const", "required", "properties", "items", "minimum", "$ref"];

    /// <summary>The schema file docs/schema/NAME.</summary>
    public static JsonElement Schema(string name)
        => JsonDocument.Parse(File.ReadAllText(Path.Combine(Repository.Root, "docs", "schema", name))).RootElement;

    /// <summary>Every way <paramref name="value"/> departs from <paramref name="schema"/>; empty when it matches.</summary>
    public static List<string> Problems(JsonElement value, JsonElement schema)
    {
        var problems = new List<string>();
        Check(value, schema, schema, "$", problems);
        return problems;
    }

    /// <summary>Fails listing every departure.</summary>
    public static void AssertMatches(JsonElement value, string schemaName)
    {
        List<string> problems = Problems(value, Schema(schemaName));
        Assert.True(problems.Count == 0, $"{schemaName}: {string.Join("; ", problems)}\n{value}");
    }

    /// <summary>The schema a $ref names ("#/$defs/NAME"), or the schema itself.</summary>
    public static JsonElement Resolve(JsonElement schema, JsonElement root)
    {
        if (!schema.TryGetProperty("$ref", out JsonElement reference))
            return schema;
        string path = reference.GetString() ?? "";
        Assert.StartsWith("#/$defs/", path);
        return root.GetProperty("$defs").GetProperty(path["#/$defs/".Length..]);
    }

    /// <summary>The JSON types a schema allows ("type": a name or a list of names).</summary>
    public static HashSet<string> Types(JsonElement schema)
        => !schema.TryGetProperty("type", out JsonElement type) ? []
            : type.ValueKind == JsonValueKind.Array ? type.EnumerateArray().Select(t => t.GetString()!).ToHashSet()
            : [type.GetString()!];

    private static void Check(JsonElement value, JsonElement schema, JsonElement root, string at, List<string> problems)
    {
        foreach (JsonProperty keyword in schema.EnumerateObject())
            if (!Known.Contains(keyword.Name))
                problems.Add($"{at}: the schema uses '{keyword.Name}', which this check does not enforce");
        schema = Resolve(schema, root);

        if (schema.TryGetProperty("const", out JsonElement constant) && !JsonElement.DeepEquals(value, constant))
            problems.Add($"{at}: {value.GetRawText()} is not the documented constant {constant.GetRawText()}");
        HashSet<string> types = Types(schema);
        if (types.Count > 0 && !types.Contains(TypeOf(value)) && !(TypeOf(value) == "integer" && types.Contains("number")))
        {
            problems.Add($"{at}: a {TypeOf(value)}, documented as {string.Join(" or ", types)}");
            return;
        }
        if (schema.TryGetProperty("minimum", out JsonElement minimum) && value.ValueKind == JsonValueKind.Number && value.GetDouble() < minimum.GetDouble())
            problems.Add($"{at}: {value.GetRawText()} is below the documented minimum {minimum.GetRawText()}");

        if (value.ValueKind == JsonValueKind.Object)
        {
            JsonElement properties = schema.TryGetProperty("properties", out JsonElement p) ? p : default;
            if (schema.TryGetProperty("required", out JsonElement required))
                foreach (JsonElement name in required.EnumerateArray())
                    if (!value.TryGetProperty(name.GetString()!, out _))
                        problems.Add($"{at}: the documented field '{name.GetString()}' is missing");
            foreach (JsonProperty field in value.EnumerateObject())
            {
                if (properties.ValueKind != JsonValueKind.Object || !properties.TryGetProperty(field.Name, out JsonElement fieldSchema))
                    problems.Add($"{at}: the field '{field.Name}' is not documented");
                else
                    Check(field.Value, fieldSchema, root, $"{at}.{field.Name}", problems);
            }
        }
        else if (value.ValueKind == JsonValueKind.Array && schema.TryGetProperty("items", out JsonElement items))
        {
            int i = 0;
            foreach (JsonElement item in value.EnumerateArray())
                Check(item, items, root, $"{at}[{i++}]", problems);
        }
    }

    /// <summary>The JSON Schema type name of a value; a number without a fraction is an integer.</summary>
    public static string TypeOf(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Object => "object",
        JsonValueKind.Array => "array",
        JsonValueKind.String => "string",
        JsonValueKind.Number => value.TryGetInt64(out _) || value.TryGetUInt64(out _) ? "integer" : "number",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        _ => "null",
    };
}
