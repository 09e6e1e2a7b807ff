using System.Text;
using Patching.Manifests;

namespace Patching.Tests.Manifests;

/// <summary>The path rules of docs/format.md, one case per rule.</summary>
public sealed class PathRulesTests
{
    [TestCase("game.cfg")]
    [TestCase("data/levels/level1.dat")]
    [TestCase("a/b/c/d/e/f.txt")]
    [TestCase(".hidden/file")]
    [TestCase("name.with.dots.txt")]
    [TestCase("spaces in name/ok.txt")]
    [TestCase("CONFIG/console.txt")]
    [TestCase("données/é.txt")]
    public void Check_SafePath_ReturnsNull(string path)
    {
        Assert.That(PathRules.Check(path), Is.Null);
    }

    [TestCase("", "empty")]
    [TestCase("/etc/passwd", "absolute")]
    [TestCase("\\\\server\\share", "absolute")]
    [TestCase("a\\b", "backslash")]
    [TestCase("../outside", "'..' segment")]
    [TestCase("a/../../outside", "'..' segment")]
    [TestCase("a/./b", "'.' segment")]
    [TestCase("a//b", "empty segment")]
    [TestCase("a/", "empty segment")]
    [TestCase("C:/Windows/evil.dll", "':'")]
    [TestCase("file.txt:stream", "':'")]
    [TestCase("bad\u0001name", "control character")]
    [TestCase("new\nline", "control character")]
    [TestCase("what?.txt", "'?'")]
    [TestCase("star*.txt", "'*'")]
    [TestCase("pipe|.txt", "'|'")]
    [TestCase("CON", "reserved name")]
    [TestCase("dir/nul.txt", "reserved name")]
    [TestCase("Com1.log", "reserved name")]
    [TestCase("lpt9", "reserved name")]
    [TestCase("trailing.", "dot or space")]
    [TestCase("trailing /x", "dot or space")]
    [TestCase("e\u0301.txt", "normalization form C")]
    [TestCase("dir/nul .txt", "reserved name 'nul'")]
    [TestCase("a/COM\u00b9.log", "reserved name 'COM\u00b9'")]
    [TestCase("CONOUT$", "reserved name")]
    [TestCase(".Patcher/state", "where Patcher keeps its state")]
    public void Check_UnsafePath_NamesTheRule(string path, string reason)
    {
        Assert.That(PathRules.Check(path), Does.Contain(reason));
    }

    [Test]
    public void Check_OverlongPathOrSegment_IsRefused()
    {
        Assert.That(PathRules.Check(new string('a', 256)), Does.Contain("segment is longer"));
        Assert.That(PathRules.Check(string.Join('/', Enumerable.Repeat(new string('a', 200), 6))), Does.Contain("path is longer"));
    }

    [TestCase("Readme.TXT", "readme.txt")]
    [TestCase("caf\u00e9", "CAFE\u0301")]
    public void CollisionComparer_SameNameOnCaseInsensitiveNormalisingFs_Collides(string a, string b)
    {
        Assert.That(PathRules.CollisionComparer.Equals(PathRules.CollisionForm(a), PathRules.CollisionForm(b)), Is.True);
    }

    [Test]
    public void CollisionComparer_EveryCharacter_CollidesAsUpperCasedFormC()
    {
        // The comparer replaced upper-cased form C copies of every path: it must call exactly the same names equal,
        // including a non-ASCII letter against the ASCII letter it upper-cases to, and characters outside the BMP (whose
        // case the framework's tables may know where the system's culture data does not).
        static string Reference(string s) => s.Normalize(System.Text.NormalizationForm.FormC).ToUpperInvariant();
        var rng = new Random(7);
        var mismatches = new List<string>();
        for (var i = 0; i <= 0x10FFFF; i++)
        {
            if (!Rune.IsValid(i)) continue;
            var r = new Rune(i);
            if (!IsValidText(r)) continue;
            foreach (var other in new[] { Rune.ToUpperInvariant(r), Rune.ToLowerInvariant(r), RandomRune(rng), Rune.IsValid(i ^ 0x20) ? new Rune(i ^ 0x20) : r })
            {
                if (!IsValidText(other)) continue;
                foreach (var (a, b) in new[] { ($"x/{r}", $"x/{other}"), ($"{r}.txt", $"{other}.TXT") })
                {
                    var expected = Reference(a) == Reference(b);
                    if (PathRules.CollisionComparer.Equals(PathRules.CollisionForm(a), PathRules.CollisionForm(b)) != expected) mismatches.Add($"U+{i:X4} / U+{other.Value:X4}");
                }
            }
        }

        Assert.That(mismatches, Is.Empty);
    }

    private static Rune RandomRune(Random rng)
    {
        while (true)
        {
            var v = rng.Next(0x110000);
            if (Rune.IsValid(v)) return new Rune(v);
        }
    }

    /// <summary>Text <see cref="PathRules.Check"/> does not refuse as invalid Unicode (normalisation throws for it).</summary>
    private static bool IsValidText(Rune r) => PathRules.Check("x" + r) != "path contains text that is not valid Unicode";

    [Test]
    public void Check_TextThatIsNotValidUnicode_IsRefusedNotThrown()
    {
        // Built in code: a lone surrogate in an attribute's string would be replaced when the test assembly is compiled.
        foreach (var path in new[] { "data/" + '\uFFFE' + ".dat", "data/a" + '\uD800' + ".dat" })
            Assert.That(PathRules.Check(path), Is.EqualTo("path contains text that is not valid Unicode"), $"{path.Length} chars");
    }

    [Test]
    public void CollisionForm_AsciiPath_IsTheSameString()
    {
        const string path = "data/Levels/level1.dat";

        Assert.That(PathRules.CollisionForm(path), Is.SameAs(path));
    }

    [Test]
    public void Parent_OfNestedAndTopLevelPaths()
    {
        Assert.That(PathRules.Parent("a/b/c.txt"), Is.EqualTo("a/b"));
        Assert.That(PathRules.Parent("c.txt"), Is.EqualTo(""));
    }
}
