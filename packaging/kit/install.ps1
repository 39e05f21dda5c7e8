# Install or update group-ipt from this folder, with no internet (Windows).
# Double-click install.bat, or run:  powershell -ExecutionPolicy Bypass -File install.ps1 [-Target FOLDER]
# The data (database, backups) stay in the data folder (%LOCALAPPDATA%\group-ipt); updating keeps
# them, backs the database up first and migrates it.
param([string]$Target = "$env:LOCALAPPDATA\group-ipt-app")
$ErrorActionPreference = "Stop"
$Kit = Split-Path -Parent $MyInvocation.MyCommand.Path

function Fail($message) {
    Write-Host "group-ipt install: $message" -ForegroundColor Red
    exit 1
}

function Find-Python {
    foreach ($candidate in @(@("py", "-3"), @("python"))) {
        $exe = $candidate[0]
        $rest = @($candidate | Select-Object -Skip 1)
        if (Get-Command $exe -ErrorAction SilentlyContinue) {
            & $exe @rest -c "import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)" 2>$null
            if ($LASTEXITCODE -eq 0) { return ,$candidate }
        }
    }
    return $null
}

$python = Find-Python
if (-not $python) {
    # The kit may carry Python's own installer (offline-kit --python-installer).
    $installer = Get-ChildItem -Path (Join-Path $Kit "python") -Filter "python-*.exe" -ErrorAction SilentlyContinue |
        Select-Object -First 1
    if (-not $installer) { Fail "Python 3.11 or newer is not installed, and this kit has no Python installer." }
    Write-Host "Installing Python from the kit ($($installer.Name))..."
    Start-Process -Wait -FilePath $installer.FullName -ArgumentList "/quiet", "InstallAllUsers=0", "PrependPath=1", "Include_launcher=1"
    $env:Path = [Environment]::GetEnvironmentVariable("Path", "User") + ";" + [Environment]::GetEnvironmentVariable("Path", "Machine")
    $python = Find-Python
    if (-not $python) { Fail "Python was installed but cannot be found; restart the computer and run install.bat again." }
}
$pyExe = $python[0]
$pyArgs = @($python | Select-Object -Skip 1)

New-Item -ItemType Directory -Force -Path $Target | Out-Null
$venv = Join-Path $Target "venv"
$groupIpt = Join-Path $venv "Scripts\group-ipt.exe"
if (Test-Path $groupIpt) {
    Write-Host "Updating group-ipt in $Target ($(& $groupIpt --version))"
} else {
    Write-Host "Installing group-ipt into $Target"
    & $pyExe @pyArgs -m venv $venv
    if ($LASTEXITCODE -ne 0) { Fail "could not make the folder $venv" }
}

# --isolated: ignore any pip settings of this computer; --no-index: never try the internet.
& (Join-Path $venv "Scripts\python.exe") -m pip --isolated --disable-pip-version-check install --quiet --no-index --find-links (Join-Path $Kit "wheels") --upgrade group-ipt
if ($LASTEXITCODE -ne 0) { Fail "pip could not install from the wheels folder (is the kit complete, and made for this Python?)" }

# Back up, migrate and say what changed (nothing happens when there is no database yet).
& $groupIpt upgrade
if ($LASTEXITCODE -ne 0) { Fail "the data could not be upgraded; it is unchanged (see the message above)." }

# The launcher: starts the app and opens the browser; the window stays open on an error.
$launcher = Join-Path $Target "start-group-ipt.bat"
Set-Content -Path $launcher -Encoding ASCII -Value @(
    "@echo off",
    "`"$groupIpt`" serve --open",
    "if errorlevel 1 pause"
)
$shell = New-Object -ComObject WScript.Shell
$shortcut = $shell.CreateShortcut((Join-Path ([Environment]::GetFolderPath("Desktop")) "group-ipt.lnk"))
$shortcut.TargetPath = $launcher
$shortcut.WorkingDirectory = $Target
$shortcut.Description = "Group IPT programme (opens in the web browser)"
$shortcut.Save()

# A second icon copies the data to a USB stick (asks for its drive letter).
$backup = Join-Path $Target "backup-to-usb.bat"
Set-Content -Path $backup -Encoding ASCII -Value @(
    "@echo off",
    "set /p DRIVE=Letter of the USB stick (for example E): ",
    "`"$groupIpt`" backup --to %DRIVE%:\",
    "pause"
)
$shortcut = $shell.CreateShortcut((Join-Path ([Environment]::GetFolderPath("Desktop")) "group-ipt backup.lnk"))
$shortcut.TargetPath = $backup
$shortcut.WorkingDirectory = $Target
$shortcut.Description = "Copy the group-ipt data to a USB stick"
$shortcut.Save()

Write-Host "group-ipt $(& $groupIpt --version) is installed. Start it from the group-ipt icon on the desktop." -ForegroundColor Green
if (-not (Test-Path (Join-Path $env:LOCALAPPDATA "group-ipt\group-ipt.db"))) {
    Write-Host "First time on this laptop: create the database with"
    Write-Host "  `"$groupIpt`" init --admin YOUR-NAME"
    Write-Host "then connect it to the central office with 'group-ipt sync setup' (ask your coordinator)."
}
