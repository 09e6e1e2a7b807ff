#!/usr/bin/env bash
# Packs Patcher and patchtool, inspects the packages, installs patchtool as a .NET tool from a local folder feed, and
# builds the sample launcher (samples/Launcher) as an outside project that restores the Patcher package from that feed;
# then makes a patch with the installed tool and applies it with the launcher. Needs nothing but the SDK, the NuGet
# registry and unzip. Prints what it checked; exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$PWD"

command -v unzip >/dev/null || { apt-get update -qq && apt-get install -y -qq unzip >/dev/null; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
feed="$work/feed"
version="$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' Directory.Build.props | head -1)"

echo "-- pack (Release) into $feed"
dotnet pack src/Patcher -c Release -o "$feed" -warnaserror -nologo -v quiet
dotnet pack tools/patchtool -c Release -o "$feed" -warnaserror -nologo -v quiet
ls -l "$feed"

fail() { echo "consumer: $*" >&2; exit 1; }
nuspec() { unzip -p "$feed/$1.$version.nupkg" "$2.nuspec"; }
# Listings are read whole before grep -q looks at them (grep -q stops early, and pipefail would count unzip's SIGPIPE).
files() { unzip -l "$feed/$1"; }
for id in Patcher patchtool; do
    spec="$(nuspec "$id" "$id")"
    for field in '<description>' '<license type="expression">MIT</license>' '<readme>README.md</readme>' '<tags>' '<repository type="git"'; do
        grep -qF "$field" <<<"$spec" || fail "$id.nuspec lacks $field"
    done
    [[ $spec != *'<description>Package Description</description>'* ]] || fail "$id has the default description"
    [ -f "$feed/$id.$version.snupkg" ] || fail "no symbols package for $id"
    grep -q ' README.md$' <<<"$(files "$id.$version.nupkg")" || fail "$id.nupkg lacks its readme"
done
lib="$(files "Patcher.$version.nupkg")"
grep -q 'lib/net10.0/Patcher.dll$' <<<"$lib" || fail "Patcher.nupkg lacks lib/net10.0/Patcher.dll"
grep -q 'lib/net10.0/Patcher.xml$' <<<"$lib" || fail "Patcher.nupkg lacks the XML docs"
grep -q 'lib/net10.0/Patcher.pdb$' <<<"$(files "Patcher.$version.snupkg")" || fail "Patcher.snupkg lacks the PDB"
grep -q '<packageType name="DotnetTool"' <<<"$(nuspec patchtool patchtool)" || fail "patchtool is not a .NET tool package"
echo "-- nuspec fields, readme, lib, XML docs, symbols: ok"

echo "-- dotnet tool install patchtool from the local feed"
dotnet tool install --tool-path "$work/tools" patchtool --add-source "$feed" --version "$version" >/dev/null
patchtool="$work/tools/patchtool"
"$patchtool" --version

echo "-- the sample launcher as an outside project, Patcher $version from the local feed"
mkdir -p "$work/consumer"
cat > "$work/consumer/Consumer.csproj" <<XML
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <Nullable>enable</Nullable>
    <ImplicitUsings>enable</ImplicitUsings>
    <LangVersion>latest</LangVersion>
    <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
    <RestorePackagesPath>$work/packages</RestorePackagesPath>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="Patcher" Version="[$version]" />
    <Compile Include="$repo/samples/Launcher/*.cs" />
  </ItemGroup>
</Project>
XML
cat > "$work/consumer/nuget.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <add key="patcher-local" value="$feed" />
  </packageSources>
</configuration>
XML
dotnet build "$work/consumer" -c Release -warnaserror -nologo -v quiet -o "$work/launcher"
# The package restored must be the one just packed (a fresh packages folder, and the same bytes).
restored="$work/packages/patcher/$version/patcher.$version.nupkg"
cmp -s "$restored" "$feed/Patcher.$version.nupkg" || fail "the restored Patcher package is not the one packed here"

echo "-- make a patch with the installed patchtool and apply it with the launcher"
"$patchtool" keygen --out "$work/keys" >/dev/null
"$patchtool" build --from fixtures/sample/v1 --to fixtures/sample/v2 --out "$work/patch" --key "$work/keys/signing.key" \
    --product sample-game --version 1.1.0 --from-version 1.0.0 >/dev/null
mkdir -p "$work/games"
cp -a fixtures/sample/v1 "$work/games/sample"
out="$(dotnet "$work/launcher/Consumer.dll" "$work/games/sample" "$work/patch" "$work/keys/signing.pub")"
echo "$out"
grep -q '^updated 1.0.0 -> 1.1.0$' <<<"$out" || fail "the launcher did not report the update"
diff -r fixtures/sample/v2 "$work/games/sample" >/dev/null || fail "the install is not exactly 1.1.0"
grep -q 'version      1.1.0' <<<"$("$patchtool" status --target "$work/games/sample")" || fail "patchtool status does not show 1.1.0"
echo "consumer complete"
