using Microsoft.Data.Sqlite;

namespace Patching.Journal;

/// <summary>One-statement helpers shared by the journal's schema and its store.</summary>
internal static class JournalSql
{
    /// <summary>Runs one statement, inside <paramref name="t"/> when given; a null parameter value is stored as SQL NULL.</summary>
    public static void Exec(SqliteConnection db, string sql, SqliteTransaction? t = null, params (string Name, object? Value)[] parameters)
    {
        using var cmd = db.CreateCommand();
        cmd.Transaction = t;
        cmd.CommandText = sql;
        foreach (var (name, value) in parameters) cmd.Parameters.AddWithValue(name, value ?? DBNull.Value);
        cmd.ExecuteNonQuery();
    }

    /// <summary>The first column of the first row as text; null when there is no row or it is NULL.</summary>
    public static string? Scalar(SqliteConnection db, string sql)
    {
        using var cmd = db.CreateCommand();
        cmd.CommandText = sql;
        return cmd.ExecuteScalar()?.ToString();
    }
}
